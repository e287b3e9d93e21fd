"""Fault injection for the DDP tests, in real torchrun workers: Python imports this module at start-up in every
process whose PYTHONPATH holds this folder. Inert unless ``RFCALC_TEST_FAULT`` is set, and then only in ranks.

``RFCALC_TEST_FAULT="rank:step:action[:attempt][,...]"``: right after optimizer step ``step`` (0-based, counted in
this process) on global rank ``rank``, during torchrun attempt ``attempt`` (this node's
``TORCHELASTIC_RESTART_COUNT``, default 0), do ``action``: ``SIGINT``/``SIGTERM``/``SIGKILL`` to this process,
``parent-SIGINT`` (Ctrl-C to the launcher), or ``hang`` (stay alive and silent, as a rank stuck in a connection
does, until torchrun's agent stops it with SIGTERM). The step is seen through torch's global optimizer hook: the
trainer has no hook of its own for tests.
"""
import os

_FAULTS = os.environ.get("RFCALC_TEST_FAULT")
if _FAULTS and "RANK" in os.environ:
    import itertools
    import signal
    import time

    from torch.optim.optimizer import register_optimizer_step_post_hook

    _attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    _here = {}  # step -> action, for this rank and attempt
    for _fault in _FAULTS.split(","):
        _rank, _step, _action, *_when = _fault.split(":")
        if int(_rank) == int(os.environ["RANK"]) and int(_when[0] if _when else 0) == _attempt:
            _here[int(_step)] = _action
    _steps = itertools.count()

    def _inject(optimizer: object, args: object, kwargs: object) -> None:
        action = _here.get(next(_steps))
        if action is None:
            return
        if action == "hang":
            signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(128 + signum))
            while True:
                time.sleep(60)
        elif action.startswith("parent-"):
            os.kill(os.getppid(), getattr(signal, action.removeprefix("parent-")))
        else:
            os.kill(os.getpid(), getattr(signal, action))

    if _here:
        register_optimizer_step_post_hook(_inject)
