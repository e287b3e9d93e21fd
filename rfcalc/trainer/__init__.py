"""The bundled trainer of rfcalc: `rfcalc train`, `rfcalc evaluate` and `rfcalc lr-find`.

Needs the `train` extra (torch, numpy, albumentations, matplotlib). Importing this package, or
:mod:`rfcalc.cli.train_commands`, imports none of them; every module that does is imported inside a command body.

Modules, one idea each:

- :mod:`rfcalc.trainer.options`     the resolved options of a run (spec's `train:` section, then flags)
- :mod:`rfcalc.trainer.datasets`    readers: CIFAR python folder / .tar.gz, image folder
- :mod:`rfcalc.trainer.download`    CIFAR download with checksum verification into the cache
- :mod:`rfcalc.trainer.data`        which reader, the uint8 cache, subsets, statistics
- :mod:`rfcalc.trainer.augment`     albumentations pipeline from YAML (strict, v1 -> v2, per-batch reseeding)
- :mod:`rfcalc.trainer.fast_aug`    device-resident data and batched flip / translate / cutout
- :mod:`rfcalc.trainer.device_aug`  the spec's albumentations transforms as batched tensor ops on a GPU
- :mod:`rfcalc.trainer.batches`     the batch sources behind one interface, chosen for the machine
- :mod:`rfcalc.trainer.engine`      device, model, optimizer, schedule, EMA, one step, evaluation
- :mod:`rfcalc.trainer.graphs`      on CUDA: the warm-up before epoch 1 and the whole step as one CUDA graph
- :mod:`rfcalc.trainer.distributed` DDP: torchrun's environment, the process group, collectives, who reports errors
- :mod:`rfcalc.trainer.sync_norm`   synchronised BatchNorm that also trains on the CPU (gloo)
- :mod:`rfcalc.trainer.launch`      `rfcalc train --nproc-per-node N`: torchrun's agent in this process
- :mod:`rfcalc.trainer.state`       the run's state as typed fields (epoch rows, best, the epoch under way)
- :mod:`rfcalc.trainer.loop`        epochs, checkpoints, NaN / OOM / Ctrl-C / SIGTERM handling
- :mod:`rfcalc.trainer.checkpoint`  atomic save, load, resume, mismatch naming
- :mod:`rfcalc.trainer.artifacts`   metrics.jsonl, summary.json
- :mod:`rfcalc.trainer.plots`       curves.png, misclassified.png, confusion.png, lr_find.png
- :mod:`rfcalc.trainer.finish`      the end of a run: summary, figures, per-class table, what was written
- :mod:`rfcalc.trainer.progress`    the rich progress bar, the epoch lines, the per-class table
- :mod:`rfcalc.trainer.lr_find`     the LR range test
- :mod:`rfcalc.trainer.run`         `rfcalc train` from spec to summary: check, options or resume, data that fits
- :mod:`rfcalc.trainer.checkpoint_eval`    `rfcalc evaluate` (a checkpoint's accuracy per class) and `rfcalc lr-find`
- :mod:`rfcalc.cli.train_commands`         `register(app)`: the three commands

Randomness is a pure function of (seed, epoch, batch) or lives in ``last.pt``: a seeded CPU run is repeatable
bit for bit, with any number of DataLoader workers, and a run resumed with ``--resume`` after Ctrl-C ends with
the same weights as one that never stopped; under torchrun, N ranks at batch B take the steps of one process at
N x B (docs/distributed.md).
"""
