"""The search: level by level (1 edit, 2 edits, ...), each level expanding the best partial fixes of the level
before (a beam), each candidate evaluated exactly; the first level with a fix is ranked and returned.

A partial fix is a candidate that brings the spec closer to passing (fewer failing rules, or the same ones by
less) without passing: RF fixed while params are still over, one of two max-pools replaced. Level n+1 runs the
generator again on those edited specs, targeted at the rules they still fail.

Edits a designer would make: one edit of a kind per layer in a fix, no conv whose window grows wider than its
input map (``Outcome.misfits``), and a cut spread over several layers before one that starves a layer: when
every fix of a level starves a layer, the next level looks for spread ones, from the width cuts that starve
no layer (the starving fixes stay, ranked after what it finds).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import partial

from rfcalc.analysis.load import Spec
from rfcalc.spec.models import Constraints
from rfcalc.suggest.apply import apply_edit
from rfcalc.suggest.candidates import Generator, Ladder
from rfcalc.suggest.edits import Edit, EditKind
from rfcalc.suggest.evaluate import BudgetSpent, Evaluator, Outcome
from rfcalc.suggest.limits import DEFAULT_BEAM, DEFAULT_BUDGET, DEFAULT_MAX_EDITS, DEFAULT_TOP
from rfcalc.suggest.result import LevelStats, SearchStats, Status, Suggestion, SuggestResult
from rfcalc.suggest.sites import find_sites, node_keys
from rfcalc.suggest.strategies import walk

# Edit kinds that may leave params, MACs and the output size as they are; every other kind changes params.
MAY_BE_FREE = frozenset({EditKind.DILATION, EditKind.PADDING, EditKind.STRIDE, EditKind.REPLACE, EditKind.REMOVE})


@dataclass(frozen=True)
class _Found:
    suggestion: Suggestion
    order: int
    digest: str


class Search:
    def __init__(self, spec: Spec, constraints: Constraints, *, budget: int = DEFAULT_BUDGET,
                 max_edits: int = DEFAULT_MAX_EDITS, beam: int = DEFAULT_BEAM) -> None:
        self.evaluator = Evaluator(constraints, budget)
        self.root = self.evaluator.outcome(spec)
        self.max_edits = max_edits
        self.beam = beam
        self.order = itertools.count()
        self.seen: set[str] = {self.root.digest}
        self.kinds: dict[str, None] = {}

    # -- one candidate -------------------------------------------------------------------------------------
    def _try(self, base: Outcome, edit: Edit) -> Outcome | None:
        """The outcome of ``edit`` on ``base``; None when invalid or when it changes the class count."""
        outcome = self.evaluator(apply_edit(base.data, edit))
        if outcome is None or not self._same_classes(outcome) or not outcome.misfits <= self.root.misfits:
            return None
        return outcome

    def _same_classes(self, outcome: Outcome) -> bool:
        before, after = self.root.output_shape, outcome.output_shape
        if len(before) == 1:
            return after == before
        return len(after) == len(before) and after[0] == before[0]

    # -- levels --------------------------------------------------------------------------------------------
    def run(self, top: int = DEFAULT_TOP) -> tuple[Status, list[Suggestion], Suggestion | None, SearchStats]:
        if self.root.ok:
            return Status.PASSES, [], None, self._stats([], False, ())
        frontier = [Suggestion((), self.root, self.root)]
        levels: list[LevelStats] = []
        partial_best: _Found | None = None
        starving: list[_Found] = []   # fixes of earlier levels that starve a layer
        unreachable: tuple[str, ...] = ()
        spent = False
        for level in range(1, self.max_edits + 1):
            solutions: list[_Found] = []
            partials: list[_Found] = []
            used, ladders = self.evaluator.used, 0
            try:
                for state in frontier:
                    names, keys = node_keys(state.after.nodes)
                    generator = Generator(find_sites(state.after.data, names), keys, state.after.report)
                    done = {(e.kind, e.site) for e in state.edits}
                    for goal in state.after.goals:
                        found = generator.ladders(goal)
                        if level == 1 and not found:
                            unreachable += (goal.rule,)
                        for ladder in found:
                            if (ladder.kind, ladder.site) in done or self._outranked(ladder, level, solutions, top):
                                continue
                            self.kinds.setdefault(ladder.kind.value)
                            ladders += 1
                            for edit, outcome in walk(ladder, state.after, self._try):
                                self._classify(state, edit, outcome, solutions, partials)
            except BudgetSpent:
                spent = True
            levels.append(LevelStats(level, len(frontier), ladders, self.evaluator.used - used, len(solutions),
                                     len(partials)))
            ranked = sorted(partials, key=lambda f: (f.suggestion.after.score, f.suggestion.rank_key(), f.order))
            if ranked and (partial_best is None or _partial_key(ranked[0]) < _partial_key(partial_best)):
                partial_best = ranked[0]
            if solutions and (not all(f.suggestion.starves for f in solutions) or level == self.max_edits):
                return Status.FIXED, _best(starving + solutions, top), None, self._stats(levels, spent, unreachable)
            starving += solutions
            if spent or not ranked:
                break
            frontier = [f.suggestion for f in sorted(ranked, key=partial(_beam_order, bool(starving)))[:self.beam]]
        if starving:
            return Status.FIXED, _best(starving, top), None, self._stats(levels, spent, unreachable)
        best_partial = partial_best.suggestion if partial_best is not None else None
        return Status.NOT_FOUND, [], best_partial, self._stats(levels, spent, unreachable)

    @staticmethod
    def _outranked(ladder: Ladder, level: int, solutions: list[_Found], top: int) -> bool:
        """Whether ``top`` fixes already found rank above anything this ladder can give: a kernel, width,
        separable, depthwise or inserted conv always changes the parameter count, so once ``top`` fixes change
        neither params nor MACs nor the output size, those ladders need not be evaluated."""
        if len(solutions) < top or ladder.kind in MAY_BE_FREE:
            return False
        kth = sorted(f.suggestion.rank_key()[:5] for f in solutions)[top - 1]
        return kth < (False, level, False, 1, 0)

    def _classify(self, state: Suggestion, edit: Edit, outcome: Outcome, solutions: list[_Found],
                  partials: list[_Found]) -> None:
        digest = outcome.digest
        if digest in self.seen:
            return
        suggestion = Suggestion(state.edits + (edit,), outcome, self.root)
        if outcome.ok:
            self.seen.add(digest)
            solutions.append(_Found(suggestion, next(self.order), digest))
        elif outcome.score < state.after.score:
            self.seen.add(digest)
            partials.append(_Found(suggestion, next(self.order), digest))

    def _stats(self, levels: list[LevelStats], spent: bool, unreachable: tuple[str, ...]) -> SearchStats:
        return SearchStats(self.evaluator.budget, self.evaluator.used, self.max_edits, self.beam, spent,
                           tuple(levels), tuple(self.kinds), unreachable)


def _beam_order(spreading: bool, found: _Found) -> tuple[bool, bool]:
    """Partial fixes that starve no layer go on first; while only starving fixes are known (``spreading``), the
    width cuts that starve no layer go first of all: the next level spreads the cut over another layer."""
    suggestion = found.suggestion
    spread = all(e.kind is EditKind.WIDTH for e in suggestion.edits) and not suggestion.starves
    return suggestion.starves, spreading and not spread


def _best(found: list[_Found], top: int) -> list[Suggestion]:
    return [f.suggestion for f in sorted(found, key=lambda f: (f.suggestion.rank_key(), f.order))[:top]]


def _partial_key(found: _Found) -> tuple[object, ...]:
    return found.suggestion.after.score, found.suggestion.rank_key(), found.order


def suggest(spec: Spec, constraints: Constraints, *, sources: dict[str, str] | None = None, top: int = DEFAULT_TOP,
            budget: int = DEFAULT_BUDGET, max_edits: int = DEFAULT_MAX_EDITS, beam: int = DEFAULT_BEAM
            ) -> SuggestResult:
    """The least changes that make ``spec`` pass ``constraints`` (torch-free)."""
    search = Search(spec, constraints, budget=budget, max_edits=max_edits, beam=beam)
    status, suggestions, best_partial, stats = search.run(top)
    return SuggestResult(spec.file, spec.name, status, search.root, stats, tuple(suggestions), best_partial,
                         dict(sources or {}))
