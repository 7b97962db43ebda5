"""Training and evaluation on caches: protocols (LOSO, LODO, holdout, composite), honest model
selection, pooled MEGC metrics (accuracy, macro-F1, UF1, UAR), reports and plots.

>>> from mepipe.train import run                                  # doctest: +SKIP
>>> res = run(["casme2.h5"], "facesleuth-cva", protocol="loso", out="runs/cva")   # doctest: +SKIP
>>> print(res.table())                                            # doctest: +SKIP

Importing :mod:`mepipe.train` is cheap (no torch): ``run``, ``Results``, ``demo_table`` and the
submodules load on first use. See docs/training.md.
"""

from __future__ import annotations

__all__ = ["run", "run_config", "TrainConfig", "Results", "TrainError", "demo_table", "results_table", "train_fold"]

_LAZY = {
    "run": "engine",
    "run_config": "engine",
    "TrainConfig": "config",
    "Results": "results",
    "TrainError": "config",
    "train_fold": "fold",
    "demo_table": "report",
    "results_table": "report",
}


def __getattr__(name):  # PEP 562: keep `import mepipe.train` free of torch
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'mepipe.train' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)
