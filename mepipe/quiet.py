"""Quiet by default: the native libraries' start-up chatter is hidden unless the user asks (``-v``).

MediaPipe (absl/glog, TensorFlow Lite) writes lines such as ``Created TensorFlow Lite XNNPACK
delegate`` and ``W0000 ... inference_feedback_manager.cc`` straight to file descriptor 2 from its
own threads when a graph is built and first run; no environment variable of the 0.10 releases
turns them off. :func:`native_stderr_silenced` points descriptor 2 at ``/dev/null`` around those
calls. ``mepipe -v`` sets ``MEPIPE_VERBOSE=1``, which the worker processes inherit, and nothing
is hidden.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager

VERBOSE_ENV = "MEPIPE_VERBOSE"

_LOCK = threading.Lock()
_DEPTH = 0
_SAVED: int | None = None


def verbose() -> bool:
    """True when the native libraries' output is to be shown (``mepipe -v``, ``MEPIPE_VERBOSE=1``)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def set_verbose(on: bool) -> None:
    """Show (``True``) or hide the native output here and in worker processes started afterwards."""
    if on:
        os.environ[VERBOSE_ENV] = "1"
    else:
        os.environ.pop(VERBOSE_ENV, None)


@contextmanager
def native_stderr_silenced():
    """Send what native code writes to file descriptor 2 to ``/dev/null`` for the duration (nested
    and concurrent uses share one redirection); a no-op when :func:`verbose`."""
    global _DEPTH, _SAVED
    if verbose():
        yield
        return
    with _LOCK:
        if _DEPTH == 0:
            try:
                sys.stderr.flush()
            except Exception:
                pass
            devnull = os.open(os.devnull, os.O_WRONLY)
            _SAVED = os.dup(2)
            os.dup2(devnull, 2)
            os.close(devnull)
        _DEPTH += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH -= 1
            if _DEPTH == 0 and _SAVED is not None:
                os.dup2(_SAVED, 2)
                os.close(_SAVED)
                _SAVED = None
