"""`rfcalc suggest`: the least changes to a spec that make every rule pass (torch-free).

- :mod:`~rfcalc.suggest.edits`: the edit vocabulary (kinds, JSON-Patch changes at raw-spec paths)
- :mod:`~rfcalc.suggest.sites`: where a raw spec can be edited; :mod:`~rfcalc.suggest.kinds`: one constructor
  per edit kind; :mod:`~rfcalc.suggest.candidates`: which edits each failing rule calls for
- :mod:`~rfcalc.suggest.apply`: edits applied to the raw dict; :mod:`~rfcalc.suggest.evaluate`: exact
  evaluation (``load_spec`` + the checker's rules); :mod:`~rfcalc.suggest.goals`: distance to passing
- :mod:`~rfcalc.suggest.search`: the level-by-level beam search and ranking; :mod:`~rfcalc.suggest.result`: the
  result and its JSON
- :mod:`~rfcalc.suggest.yaml_patch`: the top suggestion written into the user's YAML text, every other byte
  kept; :mod:`~rfcalc.suggest.render`: rich and Markdown output
"""
from __future__ import annotations

from rfcalc.suggest.search import suggest

__all__ = ["suggest"]
