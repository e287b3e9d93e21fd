"""`rfcalc suggest`: the least changes to a spec that make every rule pass (torch-free).

- :mod:`~rfcalc.suggest.edits`: the edit vocabulary (kinds, JSON-Patch changes at raw-spec paths)
- :mod:`~rfcalc.suggest.sites`: where a raw spec can be edited; :mod:`~rfcalc.suggest.kinds`: one constructor
  per edit kind; :mod:`~rfcalc.suggest.candidates`: which edits each failing rule calls for, as ladders
- :mod:`~rfcalc.suggest.apply`: edits applied to the raw dict; :mod:`~rfcalc.suggest.evaluate`: exact
  evaluation (``load_spec`` + the checker's rules); :mod:`~rfcalc.suggest.goals`: distance to passing
- :mod:`~rfcalc.suggest.strategies`: how a ladder is walked (climb, secant, gallop);
  :mod:`~rfcalc.suggest.search`: the level-by-level beam search and ranking; :mod:`~rfcalc.suggest.limits`: its
  defaults; :mod:`~rfcalc.suggest.result`: the result and its JSON
- :mod:`~rfcalc.suggest.yaml_patch`: the top suggestion written into the user's YAML text, every other byte
  kept; :mod:`~rfcalc.suggest.render`: rich and Markdown output
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rfcalc.suggest.search import suggest

__all__ = ["suggest"]


def __getattr__(name: str) -> Any:
    """``suggest`` loads on first use: the command line imports this package's limits at start-up, and `check`
    (a pre-commit hook) must not pay for the search's imports."""
    if name == "suggest":
        from rfcalc.suggest.search import suggest

        return suggest
    raise AttributeError(f"module 'rfcalc.suggest' has no attribute {name!r}")
