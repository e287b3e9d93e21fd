"""`python -m rfcalc`."""
from rfcalc.cli import main

main()
