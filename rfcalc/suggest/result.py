"""What `suggest` found: ranked suggestions with their verdicts and costs, and what the search tried.

``SuggestResult.to_dict()`` is the JSON of ``rfcalc suggest --format json`` (documented in docs/suggest.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rfcalc.errors import ExitCode
from rfcalc.suggest.edits import Edit, EditKind, starves
from rfcalc.suggest.evaluate import Outcome

SCHEMA_VERSION = 1


class Status(StrEnum):
    FIXED = "fixed"            # suggestions found: each passes every rule
    PASSES = "passes"          # the spec already passes every rule (or has none): nothing to change
    NOT_FOUND = "not_found"    # nothing passes within the search budget / the edit kinds


def _spatial(shape: tuple[int, ...]) -> tuple[int, ...]:
    return shape[1:] if len(shape) == 3 else shape


def _summary(outcome: Outcome) -> dict[str, Any]:
    return {"ok": outcome.ok, "params": outcome.params, "macs": outcome.macs, "rf": list(outcome.rf),
            "output_shape": list(outcome.output_shape), "final_map": list(outcome.final_map),
            "rules": [r.to_dict() for r in outcome.rules]}


@dataclass(frozen=True)
class Suggestion:
    """Edits applied in order to the spec, and the spec after them."""

    edits: tuple[Edit, ...]
    after: Outcome
    before: Outcome

    @property
    def delta_params(self) -> int:
        return self.after.params - self.before.params

    @property
    def delta_macs(self) -> int:
        return self.after.macs - self.before.macs

    @property
    def starves(self) -> bool:
        """A width edit cuts a layer by more than a quarter (a spread cut over several layers ranks above)."""
        return any(starves(c.old, c.value) for e in self.edits if e.kind is EditKind.WIDTH for c in e.changes)

    @property
    def output_size_kept(self) -> bool:
        """The last feature map keeps its spatial size (what gap pools, or the output map)."""
        return _spatial(self.after.final_map) == _spatial(self.before.final_map)

    @property
    def new_diagnostics(self) -> tuple[Any, ...]:
        return tuple(d for d in self.after.diagnostics if d not in self.before.diagnostics)

    def rank_key(self) -> tuple[bool, int, bool, int, int, int]:
        """Least change first: no layer starved (a cut spread over several layers before one layer cut by more
        than a quarter), fewest edits, the output size kept, smallest |Δparams|, smallest |ΔMACs|, then the
        smallest change of the numbers written in the spec (dilation 1 -> 2 before 1 -> 5)."""
        return (self.starves, len(self.edits), not self.output_size_kept, abs(self.delta_params),
                abs(self.delta_macs), sum(e.magnitude for e in self.edits))

    def to_dict(self, rank: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {} if rank is None else {"rank": rank}
        out["edits"] = [e.to_dict() for e in self.edits]
        out.update(_summary(self.after))
        out.update(delta_params=self.delta_params, delta_macs=self.delta_macs,
                   output_size_kept=self.output_size_kept,
                   diagnostics=[d.to_dict() for d in self.new_diagnostics])
        return out


@dataclass(frozen=True)
class LevelStats:
    """One level of the search: specs with ``edits - 1`` edits expanded by one more edit."""

    edits: int
    states: int
    ladders: int
    evaluations: int
    solutions: int
    partials: int

    def to_dict(self) -> dict[str, int]:
        return {"edits": self.edits, "states": self.states, "ladders": self.ladders,
                "evaluations": self.evaluations, "solutions": self.solutions, "partials": self.partials}


@dataclass(frozen=True)
class SearchStats:
    budget: int
    evaluations: int
    max_edits: int
    beam: int
    budget_spent: bool
    levels: tuple[LevelStats, ...] = ()
    kinds: tuple[str, ...] = ()          # edit kinds tried
    unreachable: tuple[str, ...] = ()    # failing rules that no edit kind works on

    def to_dict(self) -> dict[str, Any]:
        return {"budget": self.budget, "evaluations": self.evaluations, "budget_spent": self.budget_spent,
                "max_edits": self.max_edits, "beam": self.beam, "levels": [lv.to_dict() for lv in self.levels],
                "kinds": list(self.kinds), "unreachable": list(self.unreachable)}


@dataclass(frozen=True)
class SuggestResult:
    file: str
    name: str
    status: Status
    before: Outcome
    search: SearchStats
    suggestions: tuple[Suggestion, ...] = ()
    best_partial: Suggestion | None = None
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FAILED if self.status is Status.NOT_FOUND else ExitCode.OK

    @property
    def failed(self) -> tuple[Any, ...]:
        return tuple(r for r in self.before.rules if not r.ok)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION, "file": self.file, "name": self.name, "status": self.status.value,
            "exit_code": int(self.exit_code), "before": _summary(self.before), "sources": self.sources,
            "suggestions": [s.to_dict(i + 1) for i, s in enumerate(self.suggestions)],
            "best_partial": None if self.best_partial is None else self.best_partial.to_dict(),
            "search": self.search.to_dict(),
        }
