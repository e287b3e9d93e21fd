"""The search's default limits: imported by the command line at start-up, so this module imports nothing."""

DEFAULT_BUDGET = 2000     # candidate specs evaluated at most (load_spec + rules: ~0.5-2 ms each on a bundled spec)
DEFAULT_MAX_EDITS = 3     # edits in one fix at most
DEFAULT_BEAM = 4          # partial fixes carried from one level of the search to the next
DEFAULT_TOP = 5           # fixes shown
