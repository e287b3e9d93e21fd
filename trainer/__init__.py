"""The bundled trainer of rfcalc: `rfcalc train`, `rfcalc evaluate` and `rfcalc lr-find`.

Needs the `train` extra (torch, numpy, albumentations, matplotlib). Importing this package, or
:mod:`trainer.cli`, imports none of them; every module that does is imported inside a command body.

Modules, one idea each:

- :mod:`trainer.options`     the resolved options of a run (spec's `train:` section, then flags)
- :mod:`trainer.datasets`    readers: CIFAR python folder / .tar.gz, image folder
- :mod:`trainer.download`    CIFAR download with checksum verification into the cache
- :mod:`trainer.data`        which reader, the uint8 cache, subsets, statistics
- :mod:`trainer.augment`     albumentations pipeline from YAML (strict, v1 -> v2, per-batch reseeding)
- :mod:`trainer.fast_aug`    device-resident data and batched flip / translate / cutout
- :mod:`trainer.batches`     the two batch sources behind one interface
- :mod:`trainer.engine`      device, model, optimizer, schedule, EMA, one step, evaluation
- :mod:`trainer.loop`        epochs, checkpoints, NaN / OOM / Ctrl-C handling
- :mod:`trainer.checkpoint`  atomic save, load, resume, mismatch naming
- :mod:`trainer.artifacts`   metrics.jsonl, summary.json
- :mod:`trainer.plots`       curves.png, misclassified.png, confusion.png, lr_find.png
- :mod:`trainer.report`      the end of a run: summary, figures, per-class table, what was written
- :mod:`trainer.progress`    the rich progress bar, the epoch lines, the per-class table
- :mod:`trainer.lr_find`     the LR range test
- :mod:`trainer.run`         `rfcalc train` from spec to summary: check, options or resume, data that fits
- :mod:`trainer.evaluate`    `rfcalc evaluate` (a checkpoint's accuracy per class) and `rfcalc lr-find`
- :mod:`trainer.cli`         `register(app)`: the three commands

Randomness is a pure function of (seed, epoch, batch) or lives in ``last.pt``: a seeded CPU run is repeatable
bit for bit, with any number of DataLoader workers, and a run resumed with ``--resume`` after Ctrl-C ends with
the same weights as one that never stopped.
"""
