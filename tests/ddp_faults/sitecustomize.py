"""Fault injection for the DDP tests, in real torchrun workers: Python imports this module at start-up in every
process whose PYTHONPATH holds this folder. Inert unless ``RFCALC_TEST_FAULT`` is set, and then only in ranks.

``RFCALC_TEST_FAULT="rank:epoch:batch:action[:attempt]"``: after optimizer step ``batch`` (0-based) of ``epoch``
(0-based) on global rank ``rank``, during torchrun attempt ``attempt`` (``TORCHELASTIC_RESTART_COUNT``, default 0),
do ``action``: ``SIGINT``/``SIGTERM``/``SIGKILL`` to this process, or ``parent-SIGINT`` (Ctrl-C to the launcher).
"""
import os

_FAULT = os.environ.get("RFCALC_TEST_FAULT")
if _FAULT and "RANK" in os.environ:
    import signal

    from rfcalc.trainer import loop

    _rank, _epoch, _batch, _action, *_attempt = _FAULT.split(":")
    _here = (int(_rank) == int(os.environ["RANK"])
             and int(_attempt[0] if _attempt else 0) == int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")))

    def _inject(epoch: int, batch: int) -> None:
        if _here and (epoch, batch) == (int(_epoch), int(_batch)):
            if _action.startswith("parent-"):
                os.kill(os.getppid(), getattr(signal, _action.removeprefix("parent-")))
            else:
                os.kill(os.getpid(), getattr(signal, _action))

    loop.on_batch_hook = _inject
