"""The numeric environment of one fold: a fixed torch thread count (so that a fold gives the same
weights in this process or in a worker, whatever ``--jobs``), and optionally torch's
deterministic algorithms."""

from __future__ import annotations

import os
from contextlib import contextmanager


@contextmanager
def fold_environment(threads: int, deterministic: bool, device: str):
    """Run a fold with ``threads`` torch threads and, with ``deterministic``, torch's deterministic
    algorithms (``torch.use_deterministic_algorithms(True)``, cuDNN deterministic and without
    benchmarking; on CUDA the ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` workspace cuBLAS needs for it).
    Everything is restored after. An op with no deterministic implementation on the device then
    raises torch's error naming it, rather than running non-deterministically."""
    import torch

    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.set_num_threads(int(threads))
    if deterministic:
        if str(device).startswith("cuda"):
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = old_cudnn
