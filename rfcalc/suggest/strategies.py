"""How a ladder is walked: the fewest exact evaluations that find its first value passing the ladder's rule.

- ``climb``: rung by rung (few values, or a quantity that need not move one way: stride, dilation without the
  padding that keeps the size);
- ``secant``: a bound (RF, params, MACs) against a monotone ladder; the distance to passing is nearly linear
  in the rung (RF in a dilation, params in a width), so two evaluations predict the rung that passes and one or
  two more confirm it is the first. Every prediction is checked by an exact evaluation; where the quantity is
  not linear the walk falls back to ``gallop``;
- ``gallop``: probe 1, 2, 4, 8... rungs up until one passes, then bisect back.

Each yields the (edit, outcome) pairs worth keeping: the first passing rung, or, when none passes, the rung
that went furthest (a partial fix for the next level of the search).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator

from rfcalc.quantities import BOUNDED
from rfcalc.suggest.candidates import Ladder
from rfcalc.suggest.edits import Edit
from rfcalc.suggest.evaluate import Outcome

Try = Callable[[Outcome, Edit], Outcome | None]
Found = tuple[Edit, Outcome]
STALE_STEPS = 2     # a climb stops after this many rungs without progress on its rule
SECANT_STEPS = 8    # predictions before the secant walk hands over to gallop


class _Probe:
    """Evaluations of one ladder's rungs, each at most once."""

    def __init__(self, ladder: Ladder, base: Outcome, try_: Try) -> None:
        self.ladder, self.base, self.try_ = ladder, base, try_
        self.done: dict[int, Found | None] = {}
        self.inapplicable: set[int] = set()

    def __call__(self, i: int) -> Found | None:
        if i not in self.done:
            edit = self.ladder.make(self.ladder.values[i])
            if edit is None:
                self.inapplicable.add(i)
            outcome = None if edit is None else self.try_(self.base, edit)
            self.done[i] = None if edit is None or outcome is None else (edit, outcome)
        return self.done[i]

    def distance(self, found: Found | None) -> float | None:
        return None if found is None else found[1].distance_of(self.ladder.goal.rule)


def walk(ladder: Ladder, base: Outcome, try_: Try) -> Iterator[Found]:
    if not ladder.monotone or len(ladder.values) <= 2:
        yield from climb(ladder, base, try_)
    elif ladder.goal.kind in BOUNDED:
        yield from secant(ladder, base, try_)
    else:
        yield from gallop(ladder, base, try_)


def climb(ladder: Ladder, base: Outcome, try_: Try) -> Iterator[Found]:
    """Rung by rung until one passes the ladder's rule, the spec turns invalid, or progress stalls."""
    rule = ladder.goal.rule
    previous, stale = base.distance_of(rule), 0
    for value in ladder.values:
        edit = ladder.make(value)
        if edit is None:
            continue
        outcome = try_(base, edit)
        if outcome is None:
            if ladder.gaps:
                continue
            return
        yield edit, outcome
        now = outcome.distance_of(rule)
        if now == 0:
            return
        stale = stale + 1 if now >= previous else 0
        if stale >= STALE_STEPS:
            return
        previous = min(previous, now)


def _first_passing(probe: _Probe, lo: int, hi: int) -> Found | None:
    """Bisect for the first passing rung in (lo, hi]; ``hi`` passes and ``lo`` does not. Tries the rung just
    below ``hi`` first: after a good prediction that settles it in one evaluation. An invalid rung in between
    (a width a later grouped conv rejects) tells nothing: the nearest valid rung below it is asked instead."""
    first = True
    while hi - lo > 1:
        mid = hi - 1 if first else (lo + hi) // 2
        first = False
        while mid > lo and probe(mid) is None:
            mid -= 1
        if mid == lo:
            break
        if probe.distance(probe(mid)) == 0:
            hi = mid
        else:
            lo = mid
    return probe(hi)


def gallop(ladder: Ladder, base: Outcome, try_: Try, probe: _Probe | None = None) -> Iterator[Found]:
    """Probe rungs 1, 2, 4, 8... up until one passes, then bisect back to the first that does."""
    probe = probe or _Probe(ladder, base, try_)
    n = len(ladder.values)
    last_valid, lo, hi, step, i = None, -1, None, 1, 0
    while i < n:
        found = probe(i)
        if found is None and i not in probe.inapplicable and not ladder.gaps and last_valid is None:
            i += 1                 # invalid from the start (sizes that a later merge rejects): step until valid
            continue
        if found is None and i not in probe.inapplicable and not ladder.gaps:
            # The spec turned invalid: larger rungs will not come back. Rungs skipped on the way may pass.
            for j in range(lo + 1, i):
                found = probe(j)
                if found is None:
                    break
                if probe.distance(found) == 0:
                    yield found
                    return
                last_valid = found
            break
        if found is not None:
            if probe.distance(found) == 0:
                hi = i
                break
            last_valid, lo = found, i
        i = min(i + step, n - 1) if i < n - 1 else n
        step *= 2
    if hi is None:
        if last_valid is not None:
            yield last_valid
        return
    best = _first_passing(probe, lo, hi)
    if best is not None:
        yield best


def secant(ladder: Ladder, base: Outcome, try_: Try) -> Iterator[Found]:
    """Predict the first passing rung from the slope of the distance to passing, confirm it, settle the edge."""
    probe = _Probe(ladder, base, try_)
    n = len(ladder.values)
    lo, d_lo = -1, base.distance_of(ladder.goal.rule)
    i = 0
    for _ in range(SECANT_STEPS):
        found = probe(i)
        d = probe.distance(found)
        if d is None:
            break
        if d == 0:
            best = _first_passing(probe, lo, i)
            if best is not None:
                yield best
            return
        slope = (d_lo - d) / (i - lo)
        if slope <= 0:
            break                  # no progress at this rung: not the linear case
        lo, d_lo = i, d
        if i == n - 1:
            if found is not None:
                yield found        # the last rung does not pass: the most progress this ladder makes
            return
        i = min(n - 1, i + max(1, math.ceil(d / slope)))
    yield from gallop(ladder, base, try_, probe)
