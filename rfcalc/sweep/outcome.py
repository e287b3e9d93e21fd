"""What became of a trial, read from Optuna's state and the user attributes the sweep sets (one place).

| outcome      | Optuna state | user attribute `outcome` | counts towards `trials` |
|--------------|--------------|--------------------------|-------------------------|
| complete     | COMPLETE     | complete                 | yes |
| pruned       | PRUNED       | pruned                   | yes |
| rejected     | PRUNED       | rejected                 | yes (never trained; the reason is in `reason`) |
| failed       | FAIL         | failed                   | yes (training failed: NaN loss, a crash) |
| interrupted  | FAIL         | interrupted              | no: Ctrl-C; the same candidate is queued again |
| lost         | FAIL         | (none)                   | no: its worker died (no heartbeat); queued again |
| surplus      | FAIL         | surplus                  | no: started as the budget filled; never run |
| running      | RUNNING      |                          | yes |
| waiting      | WAITING      |                          | yes (queued) |

A rejected candidate is PRUNED rather than FAIL so that Optuna's samplers learn from it: the sweep gives them
its distance from the rules as the constraint `rules` (also the user attribute `violation`), and TPE ranks it
below every candidate that passes.
"""
from __future__ import annotations

from enum import Enum
from typing import Any


class Outcome(str, Enum):
    complete = "complete"
    pruned = "pruned"
    rejected = "rejected"
    failed = "failed"
    interrupted = "interrupted"
    lost = "lost"
    surplus = "surplus"
    running = "running"
    waiting = "waiting"


# The user attributes the sweep writes on a trial (Optuna's "params" are the space's values, so the model's
# parameter count is `model_params`).
ATTRS: tuple[str, ...] = ("outcome", "reason", "host", "folder", "model_params", "macs", "rf", "check_ms",
                          "violation", "accuracy", "epochs", "seconds", "same_as", "resumed_from")


def outcome_of(trial: Any) -> Outcome:
    """The outcome of an Optuna FrozenTrial."""
    state = trial.state.name
    said = trial.user_attrs.get("outcome")
    if state == "COMPLETE":
        return Outcome.complete
    if state == "PRUNED":
        return Outcome.rejected if said == Outcome.rejected.value else Outcome.pruned
    if state == "RUNNING":
        return Outcome.running
    if state == "WAITING":
        return Outcome.waiting
    if said in (Outcome.failed.value, Outcome.interrupted.value, Outcome.surplus.value):
        return Outcome(said)
    return Outcome.lost


COUNTED = frozenset({Outcome.complete, Outcome.pruned, Outcome.rejected, Outcome.failed, Outcome.running,
                     Outcome.waiting})


def counts(trial: Any) -> bool:
    """Whether a trial takes one of the sweep's `trials`."""
    return outcome_of(trial) in COUNTED
