"""Quiet by default: MediaPipe/TFLite/absl lines are hidden unless -v, in worker processes too."""

import subprocess
import sys

import pytest

NATIVE = ("TensorFlow Lite", "W0000", "absl::InitializeLog", "inference_feedback_manager")


def _preprocess(manifest, out, *extra):
    cmd = [
        sys.executable,
        "-m",
        "mepipe.cli",
        *extra,
        "preprocess",
        "--manifest",
        str(manifest),
        "--out",
        str(out),
        "--jobs",
        "2",
        "--quiet",
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_native_output_hidden_unless_verbose(synth_set, tmp_path):
    quiet = _preprocess(synth_set, tmp_path / "q.h5")
    assert quiet.returncode == 0, quiet.stderr
    assert not [s for s in NATIVE if s in quiet.stderr], quiet.stderr
    lines = [ln for ln in (quiet.stdout + quiet.stderr).splitlines() if ln.strip()]
    assert len(lines) == len(set(lines)), lines  # no line printed twice
    loud = _preprocess(synth_set, tmp_path / "v.h5", "-v")
    assert loud.returncode == 0, loud.stderr
    assert any(s in loud.stderr for s in NATIVE), loud.stderr[-2000:]


def test_silencer_restores_stderr_and_nests(capfd, monkeypatch):
    import os

    from mepipe.quiet import VERBOSE_ENV, native_stderr_silenced

    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    with native_stderr_silenced():
        os.write(2, b"hidden-1\n")
        with native_stderr_silenced():
            os.write(2, b"hidden-2\n")
        os.write(2, b"hidden-3\n")
    os.write(2, b"shown-1\n")
    monkeypatch.setenv(VERBOSE_ENV, "1")
    with native_stderr_silenced():
        os.write(2, b"shown-2\n")
    err = capfd.readouterr().err
    assert "hidden" not in err and "shown-1" in err and "shown-2" in err
