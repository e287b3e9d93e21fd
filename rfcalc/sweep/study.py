"""The Optuna side: storage, sampler, pruner, and opening (or continuing) the study of a sweep.

- Storage: ``sqlite:///<out>/study.db`` by default, or any SQLAlchemy URL (``postgresql+psycopg://…``,
  ``mysql+pymysql://…``) that several workers on several machines share. Heartbeats mark a trial whose worker
  died as failed after ``GRACE_S``, and queue its candidate again.
- Sampler: TPE for one objective (multivariate, constant liar for parallel workers), NSGA-II for two. Every
  trial sets the constraint ``rules`` (``Trial.set_constraint``): 0 when the candidate passes, its distance from
  the rules when it is rejected, so rejected candidates steer the samplers away from rule-breaking regions.
- Re-running a sweep continues its study (``load_if_exists``); a study made from another sweep file is refused.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

from rfcalc.errors import RfcalcError
from rfcalc.extras import installed
from rfcalc.sweep.load import Sweep
from rfcalc.sweep.outcome import counts

HEARTBEAT_S = 20
GRACE_S = 120
SQLITE_LOCK_TIMEOUT_S = 120
ATTR = "rfcalc_sweep"


def storage_url(out: Path, storage: str | None) -> str:
    """--storage, else the SQLite file in the output folder. A bare ``postgresql://`` URL gets psycopg 3 (the
    `sweep` extra's driver) when psycopg2, SQLAlchemy's default, is not installed."""
    if storage is None:
        return f"sqlite:///{(out / 'study.db').resolve()}"
    for bare in ("postgresql://", "postgres://"):
        if storage.startswith(bare) and not installed("psycopg2") and installed("psycopg"):
            return "postgresql+psycopg://" + storage[len(bare):]
    return storage


def shown_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unreadable URL is shown as given, minus anything after '@'-less parsing
        return url.split("@")[-1] if "@" in url else url


def open_storage(url: str) -> Any:
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    kwargs: dict[str, Any] = ({"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}} if url.startswith("sqlite")
                              else {"pool_pre_ping": True})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            storage = RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                                 heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3))
        except Exception as exc:  # SQLAlchemy and drivers raise many kinds; all are one line here
            raise RfcalcError(f"--storage {shown_url(url)}: cannot open the study storage: "
                              f"{_first_line(exc)}") from None
    if url.startswith("sqlite"):
        _begin_immediate(storage.engine)
    return storage


def _begin_immediate(engine: Any) -> None:
    """Every SQLite transaction takes the write lock when it begins (``BEGIN IMMEDIATE``). pysqlite's deferred
    transactions let two workers both read an enqueued trial as WAITING and both claim it (Optuna's
    ``FOR UPDATE`` is a no-op on SQLite): both trained trial 0 into one folder. SQLAlchemy's recipe for pysqlite."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # pysqlite issues no BEGIN of its own

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # the connections opened before the listeners are closed; new ones get them


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def make_sampler(sweep: Sweep, worker: int) -> Any:
    import optuna

    seed = None if sweep.seed is None else sweep.seed + worker
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if len(sweep.objective) > 1:
            return optuna.samplers.NSGAIISampler(population_size=sweep.population, seed=seed)
        return optuna.samplers.TPESampler(n_startup_trials=sweep.startup_trials, seed=seed, multivariate=True,
                                          constant_liar=True)


def make_pruner(sweep: Sweep) -> Any:
    import optuna

    if sweep.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=sweep.prune_after, n_warmup_steps=0)
    if sweep.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=sweep.min_epochs,
                                                      reduction_factor=sweep.reduction_factor)
    if sweep.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=sweep.min_epochs, max_resource=sweep.budget.epochs,
                                              reduction_factor=sweep.reduction_factor)
    return optuna.pruners.NopPruner()


def directions(sweep: Sweep) -> list[Literal["maximize", "minimize"]]:
    second: list[Literal["maximize", "minimize"]] = ["minimize"] * (len(sweep.objective) - 1)
    return ["maximize", *second]


def open_study(sweep: Sweep, url: str, worker: int = 0, *, create: bool = True) -> Any:
    """Create the sweep's study or continue it; the first to create it queues the sweep's `enqueue` candidates.
    With ``create`` off, a study that does not exist yet is an error (``--show``)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(url)
    try:
        if not create and sweep.name not in optuna.get_all_study_names(storage):
            raise RfcalcError(f"no study '{sweep.name}' in {shown_url(url)} yet; run the sweep first (without --show)")
        study = optuna.create_study(study_name=sweep.name, storage=storage, sampler=make_sampler(sweep, worker),
                                    pruner=make_pruner(sweep), directions=directions(sweep), load_if_exists=True)
    except RfcalcError:
        raise
    except ValueError as exc:
        raise RfcalcError(f"study '{sweep.name}' in {shown_url(url)}: {exc}") from None
    except Exception as exc:  # a database error is one line
        raise RfcalcError(f"--storage {shown_url(url)}: {_first_line(exc)}") from None
    made = study.user_attrs.get(ATTR)
    if made is None:
        study.set_user_attr(ATTR, {"digest": sweep.digest, "file": sweep.file, "base": sweep.base_name,
                                   "objective": list(sweep.objective),
                                   "space": [d.describe() for d in sweep.dimensions]})
        for values in sweep.enqueue:
            study.enqueue_trial(values, skip_if_exists=True)
    elif made.get("digest") != sweep.digest:
        raise RfcalcError(f"study '{sweep.name}' in {shown_url(url)} was made from another sweep ({made.get('file')}: "
                          f"its base spec, space, objective or budget differ); give this sweep another `name:`, "
                          f"--out or --storage")
    return study


def counted(study: Any) -> int:
    """Trials that take a place in the budget (see :mod:`rfcalc.sweep.outcome`)."""
    return sum(1 for t in study.get_trials(deepcopy=False) if counts(t))


def is_surplus(study: Any, number: int, trials: int) -> bool:
    """Whether trial ``number`` came after the budget was full (two workers asking at the same instant)."""
    return sum(1 for t in study.get_trials(deepcopy=False) if t.number < number and counts(t)) >= trials
