"""`python -m rfcalc`."""
from rfcalc.cli.app import main

main()
