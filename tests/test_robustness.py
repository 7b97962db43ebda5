"""Every bad input handled: a clear message naming the file and the sample, the batch goes on, the
failure is recorded in the cache's failures table. Plus broken outputs and caches, and security.

One batch (module fixture ``batch``) holds a good sample and one row per bad input of the matrix;
it runs once through ``mepipe preprocess`` (in this process) and each test checks its row.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from mepipe.cache import CacheError, open_cache, spool_dir
from mepipe.cli import main

REPO = Path(__file__).resolve().parents[1]
FACES = REPO.parent / "shared" / "data" / "faces"
DS = "bad"
HEADER = "subject,sample_id,path,onset,apex,offset,emotion,aus\n"
ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")


def _cli(*argv):
    """Run ``mepipe`` in this process; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def _frames(folder: Path) -> list[np.ndarray]:
    files = sorted(folder.glob("img*.png"), key=lambda p: int(p.stem[3:]))
    return [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in files]


def _write(folder: Path, frames, ext=".png"):
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        ok, buf = cv2.imencode(ext, f)
        assert ok
        (folder / f"img{i}{ext}").write_bytes(buf.tobytes())


def _face_media(name: str) -> Path | None:
    p = FACES / name
    return p if p.is_file() else None


# row id -> (path column, onset, apex, emotion, expected: "ok" or (stage, words in the reason))
def _build(root: Path) -> tuple[Path, dict]:
    from mepipe.synth import make_synthetic_set

    make_synthetic_set(
        root / "synth", subjects=1, samples_per_subject=1, seed=5, size=128, frames_per_sample=3, progress=False
    )
    good = _frames(root / "synth" / "s01" / "s01_01")
    clips = root / "clips"
    rows: dict[str, tuple] = {}
    _write(clips / "good", good)
    rows["good"] = ("clips/good", 0, 1, "happiness", "ok")
    rows["missing_folder"] = ("clips/not_there", 0, 1, "happiness", ("annotation", "'clips/not_there' not found"))
    rows["missing_video"] = (
        "clips/not_there.mp4",
        0,
        1,
        "happiness",
        ("annotation", "'clips/not_there.mp4' not found"),
    )
    (clips / "empty").mkdir()
    rows["empty_folder"] = ("clips/empty", 0, 1, "happiness", ("frames", "no image frames"))
    _write(clips / "truncated_jpeg", good, ".jpg")
    apex_jpg = clips / "truncated_jpeg" / "img1.jpg"
    apex_jpg.write_bytes(apex_jpg.read_bytes()[: apex_jpg.stat().st_size // 2])
    rows["truncated_jpeg"] = ("clips/truncated_jpeg", 0, 1, "happiness", ("frames", "img1.jpg"))
    _write(clips / "truncated_png", good)
    apex_png = clips / "truncated_png" / "img1.png"
    apex_png.write_bytes(apex_png.read_bytes()[: apex_png.stat().st_size * 3 // 4])
    rows["truncated_png"] = ("clips/truncated_png", 0, 1, "happiness", ("frames", "img1.png"))
    _write(clips / "corrupt_png", good)
    (clips / "corrupt_png" / "img1.png").write_bytes(b"this is not a PNG" * 40)
    rows["corrupt_png"] = ("clips/corrupt_png", 0, 1, "happiness", ("frames", "cannot decode image"))
    resized = [good[0], cv2.resize(good[1], (100, 90)), good[2]]
    _write(clips / "size_change", resized)
    rows["size_change"] = ("clips/size_change", 0, 1, "happiness", ("frames", "frame size 100x90 differs"))
    _write(clips / "grey", [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in good])
    rows["grey"] = ("clips/grey", 0, 1, "happiness", "ok")
    _write(clips / "rgba", [cv2.cvtColor(f, cv2.COLOR_BGR2BGRA) for f in good])
    rows["rgba"] = ("clips/rgba", 0, 1, "happiness", "ok")
    rows["onset_after_apex"] = ("clips/good", 2, 1, "happiness", ("annotation", "onset 2 is after apex 1"))
    rows["past_end"] = ("clips/good", 0, 7, "happiness", ("frames", "frame index 7 is past the last frame (2)"))
    rows["nan_onset"] = ("clips/good", "nan", 1, "happiness", ("annotation", "onset is not a number: 'nan'"))
    rows["text_apex"] = ("clips/good", 0, "three", "happiness", ("annotation", "apex is not a number: 'three'"))
    spaced = clips / "dir with spaces" / "ñandú 顔 ü"
    _write(spaced, good)
    rows["spaced_unicode_path"] = ("clips/dir with spaces/ñandú 顔 ü", 0, 1, "happiness", "ok")
    rows["no_emotion"] = ("clips/good", 0, 1, "", "ok")
    rows["code_in_emotion"] = ("clips/good", 0, 1, "__import__('pathlib').Path('PWNED').touch()", "ok")
    # a face that dlib finds but that is under crop.min_face (40 px)
    from mepipe.resources import packaged_faces

    hopper = [f for f in packaged_faces() if f.name == "grace_hopper.jpg"]
    assert hopper, "matplotlib's grace_hopper.jpg is a dependency of the synthetic set"
    small = cv2.resize(cv2.imread(str(hopper[0])), None, fx=0.16, fy=0.16, interpolation=cv2.INTER_AREA)
    canvas = np.full((200, 200, 3), 128, np.uint8)
    canvas[: small.shape[0], : small.shape[1]] = small
    _write(clips / "too_small", [canvas, canvas])
    rows["too_small"] = ("clips/too_small", 0, 1, "happiness", ("crop", "face too small"))
    # MediaPipe finds no landmarks on a line drawing of a face (its edges, black on white) that
    # dlib's HOG detector still finds (checked for margins 0.1-0.3 and MediaPipe inputs 192-320)
    if _face_media("single_face.jpg"):
        g = cv2.cvtColor(cv2.imread(str(FACES / "single_face.jpg")), cv2.COLOR_BGR2GRAY)
        drawing = cv2.cvtColor(255 - cv2.Canny(g, 50, 150), cv2.COLOR_GRAY2BGR)
        _write(clips / "no_landmarks", [drawing, drawing])
        rows["no_landmarks"] = (
            "clips/no_landmarks",
            0,
            1,
            "happiness",
            ("align", "MediaPipe found no face landmarks on the onset crop"),
        )
    if _face_media("no_face.mp4"):
        shutil.copy(FACES / "no_face.mp4", clips / "no_face.mp4")
        rows["no_face"] = ("clips/no_face.mp4", 0, 5, "happiness", ("crop", "no face"))
    if _face_media("multi_face.jpg"):
        (clips / "multi").mkdir()
        for i in range(2):
            shutil.copy(FACES / "multi_face.jpg", clips / "multi" / f"img{i}.jpg")
        rows["multi_face"] = ("clips/multi", 0, 1, "happiness", "ok")
    # paths that are not plain folders or files, and frames that lead outside the manifest's folder
    (clips / "loop").symlink_to(clips / "loop")
    rows["symlink_loop"] = ("clips/loop", 0, 1, "happiness", ("annotation", "symlink loop"))
    os.mkfifo(clips / "fifo.mp4")
    rows["fifo_video"] = ("clips/fifo.mp4", 0, 1, "happiness", ("annotation", "is a FIFO, not a folder"))
    outside = root.parent / f"{root.name}-outside"
    _write(outside, good)
    (clips / "linked").mkdir()
    for f in sorted(outside.iterdir()):
        (clips / "linked" / f.name).symlink_to(f)
    rows["frames_outside_root"] = ("clips/linked", 0, 1, "happiness", ("annotation", "leads outside the dataset root"))
    rows["nul_in_emotion"] = ("clips/good", 0, 1, "happi\x00ness", ("annotation", "hold a NUL byte"))
    _write(clips / "hidden_junk", good)
    (clips / "hidden_junk" / "._img0.png").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    (clips / "hidden_junk" / ".img9.png").write_bytes(b"not a frame")
    rows["hidden_files_ignored"] = ("clips/hidden_junk", 0, 1, "happiness", "ok")
    lines = [f"s,{sid},{path},{on},{ap},,{emo}," for sid, (path, on, ap, emo, _) in rows.items()]
    # ids holding '/' would make two rows one key (bad/a/b/c): both refused, neither dropped as a duplicate
    lines += ["a/b,c,clips/good,0,1,,happiness,", "a,b/c,clips/good,0,1,,happiness,"]
    lines.append("s,good,clips/good,0,1,,happiness,")  # a duplicate sample id
    rows["duplicate_id"] = None
    manifest = root / "manifest.csv"
    manifest.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    return manifest, rows


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad input")
    manifest, rows = _build(root)
    out = root / "out" / "bad.h5"
    out.parent.mkdir()
    cwd = os.getcwd()
    os.chdir(root)  # so that a string evaluated as code would leave PWNED here
    try:
        rc, so, se = _cli("preprocess", "--manifest", manifest, "--dataset-name", DS, "--out", out, "--quiet")
    finally:
        os.chdir(cwd)
    assert rc == 0, se
    with open_cache(out) as c:
        meta = c.meta.copy()
        fails = c.failures.copy()
    return {"root": root, "manifest": manifest, "rows": rows, "out": out, "meta": meta, "fails": fails, "stdout": so}


BAD_ROWS = [
    "missing_folder",
    "missing_video",
    "empty_folder",
    "truncated_jpeg",
    "truncated_png",
    "corrupt_png",
    "size_change",
    "onset_after_apex",
    "past_end",
    "nan_onset",
    "text_apex",
    "too_small",
    "no_landmarks",
    "no_face",
    "symlink_loop",
    "fifo_video",
    "frames_outside_root",
    "nul_in_emotion",
]
GOOD_ROWS = [
    "good",
    "grey",
    "rgba",
    "spaced_unicode_path",
    "multi_face",
    "no_emotion",
    "code_in_emotion",
    "hidden_files_ignored",
]


def _row(batch, sid):
    if sid not in batch["rows"]:
        pytest.skip(f"real face media for row {sid!r} not found in {FACES}")
    return batch["rows"][sid]


@pytest.mark.parametrize("sid", BAD_ROWS)
def test_bad_input_recorded_with_file_and_sample(batch, sid):
    path, _, _, _, (stage, words) = _row(batch, sid)
    key = f"{DS}/s/{sid}"
    fails = batch["fails"].set_index("key")
    assert key in fails.index, f"{key} not in failures table:\n{batch['fails']}"
    row = fails.loc[key]
    assert row["stage"] == stage
    reason = row["reason"]
    assert words in reason
    assert key in reason  # names the sample
    named = str(batch["manifest"]) if stage == "annotation" else str((batch["root"] / path).resolve())
    assert named in reason  # names the file (the manifest row, or the frames/video)
    assert key in batch["stdout"]  # the summary lists it too
    assert key not in set(batch["meta"]["key"])  # the batch went on without it


@pytest.mark.parametrize("sid", GOOD_ROWS)
def test_odd_but_valid_input_works(batch, sid):
    _row(batch, sid)
    key = f"{DS}/s/{sid}"
    meta = batch["meta"].set_index("key")
    assert key in meta.index, f"{key} failed: {batch['fails']}"
    with open_cache(batch["out"]) as c:
        r = c.read(c.index_of(key))
    assert r["onset"].shape == (128, 128, 3) and r["onset"].dtype == np.uint8
    assert np.isfinite(r["flow"]).all() and r["flow"].shape == (2, 128, 128)


def test_grey_and_rgba_frames_give_the_colour_sample_s_grey_content(batch):
    with open_cache(batch["out"]) as c:
        good = c.read(c.index_of(f"{DS}/s/good"))
        rgba = c.read(c.index_of(f"{DS}/s/rgba"))
        grey = c.read(c.index_of(f"{DS}/s/grey"))
    assert np.array_equal(rgba["onset"], good["onset"])  # alpha dropped, colour kept
    assert np.array_equal(grey["onset"][..., 0], grey["onset"][..., 1])  # grey stored as 3 equal channels


def test_spaced_non_ascii_path_is_stored_verbatim(batch):
    meta = batch["meta"].set_index("key")
    assert meta.loc[f"{DS}/s/spaced_unicode_path", "source"].endswith("dir with spaces/ñandú 顔 ü")


def test_no_emotion_is_cached_with_an_empty_emotion(batch):
    meta = batch["meta"].set_index("key")
    assert meta.loc[f"{DS}/s/no_emotion", "emotion"] == ""
    assert meta.loc[f"{DS}/s/good", "emotion"] == "happiness"


def test_ids_with_a_slash_are_refused_not_merged(batch):
    fails = batch["fails"]
    slash = fails[fails["reason"].str.contains("holds a '/'")]
    assert len(slash) == 2, fails
    assert not slash["reason"].str.contains("duplicate").any()
    assert not any(k.startswith(f"{DS}/a") for k in batch["meta"]["key"])


def test_frames_outside_root_are_read_when_allowed(batch, tmp_path):
    m = batch["root"] / "linked.csv"
    m.write_text(HEADER + "s,linked,clips/linked,0,1,,happiness,\n", encoding="utf-8")
    rc, so, se = _cli(
        "preprocess",
        "--manifest",
        m,
        "--dataset-name",
        DS,
        "--out",
        tmp_path / "l.h5",
        "--quiet",
        "--allow-outside-root",
    )
    assert rc == 0 and "1 done" in so, so + se


def test_duplicate_sample_id_recorded_first_kept(batch):
    assert list(batch["meta"]["key"]).count(f"{DS}/s/good") == 1
    dup = batch["fails"][batch["fails"]["key"].str.startswith(f"{DS}/s/good#")]
    assert len(dup) == 1, batch["fails"]
    reason = dup.iloc[0]["reason"]
    assert dup.iloc[0]["stage"] == "annotation"
    assert "duplicate sample id (first at row 2)" in reason and str(batch["manifest"]) in reason
    assert f"{DS}/s/good" in reason


def test_strings_from_annotations_are_data(batch):
    meta = batch["meta"].set_index("key")
    assert meta.loc[f"{DS}/s/code_in_emotion", "emotion"] == "__import__('pathlib').Path('PWNED').touch()"
    assert not (batch["root"] / "PWNED").exists() and not Path("PWNED").exists()


def test_a_recipe_with_labels_is_refused_naming_where_labels_went(batch, tmp_path):
    recipe = tmp_path / "two.toml"
    recipe.write_text('[labels]\nclasses = ["happiness", "surprise"]\ndrop_unmapped = false\n', encoding="utf-8")
    rc, so, se = _cli(
        "preprocess", "--manifest", batch["manifest"], "--out", tmp_path / "x.h5", "--recipe", recipe, "--quiet"
    )
    assert rc == 2 and "[labels] is no longer part of a recipe" in se and "--label-map" in se
    assert not (tmp_path / "x.h5").exists()


def test_non_utf8_folder_name_works(batch, tmp_path):
    """A folder whose name is not UTF-8 (possible on Linux; adapters list folders) is read and cached."""
    from mepipe.recipe import load_recipe
    from mepipe.runner import preprocess
    from mepipe.sample import Sample

    src = batch["root"] / "clips" / "good"
    raw = os.fsencode(str(tmp_path)) + b"/clip \xff\xfe"
    try:
        os.mkdir(raw)
    except OSError as e:
        pytest.skip(f"this file system refuses non-UTF-8 names: {e}")
    for p in src.iterdir():
        shutil.copy(p, os.fsdecode(raw + b"/" + os.fsencode(p.name)))
    s = Sample(
        dataset="raw",
        subject="s",
        sample_id="x",
        source=Path(os.fsdecode(raw)),
        onset=0,
        apex=1,
        emotion="happiness",
        label=0,
    )
    out = tmp_path / "raw.h5"
    summary = preprocess([s], out, load_recipe("default"), progress=False)
    assert summary.done == 1, summary.text()
    with open_cache(out) as c:
        assert c.meta["source"][0].endswith("clip \\xff\\xfe")


# ----------------------------------------------------------------------------- outputs and caches


def test_output_folder_not_writable_read_only_location(batch):
    rc, so, se = _cli("preprocess", "--manifest", batch["manifest"], "--out", "/proc/mepipe-test.h5", "--quiet")
    assert rc == 2
    assert "output folder is not writable: /proc" in se


def test_output_folder_not_writable_permissions(batch, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("running as root: permission bits do not stop root (the /proc case covers this)")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, so, se = _cli("preprocess", "--manifest", batch["manifest"], "--out", ro / "c.h5", "--quiet")
    finally:
        ro.chmod(0o755)
    assert rc == 2 and f"output folder is not writable: {ro}" in se


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _limit_file_size(limit: int):
    def pre():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return pre


@pytest.mark.slow
def test_disk_full_keeps_existing_cache_intact(batch, tmp_path):
    root = batch["root"]
    m = root / "two.csv"
    m.write_text(HEADER + "s,a,clips/good,0,1,,happiness,\ns,b,clips/rgba,0,1,,happiness,\n", encoding="utf-8")
    out = tmp_path / "full.h5"
    rc, _, se = _cli("preprocess", "--manifest", m, "--out", out, "--limit", "1", "--quiet")
    assert rc == 0, se
    before = _sha(out)
    limit = out.stat().st_size + 2048  # the copy of the cache fits; one more sample does not
    cmd = [sys.executable, "-B", "-m", "mepipe.cli", "preprocess", "--manifest", str(m), "--out", str(out), "--quiet"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=ENV, preexec_fn=_limit_file_size(limit))
    assert p.returncode == 2, p.stderr
    assert "mepipe: error: cannot write" in p.stderr and "File too large" in p.stderr
    assert "Traceback" not in p.stderr
    assert _sha(out) == before  # not a byte changed
    with open_cache(out) as c:
        assert list(c.meta["key"]) == ["two/s/a"]
    assert not list(tmp_path.glob("full.h5.tmp-*"))
    assert "1 finished sample(s) stay spooled" in p.stderr
    rc, so, se = _cli("preprocess", "--manifest", m, "--out", out, "--quiet")  # with room again, it finishes
    assert rc == 0 and "0 done, 2 skipped" in so, so + se  # the spooled sample is committed, not recomputed
    with open_cache(out) as c:
        assert sorted(c.meta["key"]) == ["two/s/a", "two/s/b"]
    assert not spool_dir(out).exists()


@pytest.fixture
def newer_schema(batch, tmp_path):
    p = tmp_path / "newer.h5"
    shutil.copy(batch["out"], p)
    with h5py.File(p, "a") as f:
        f.attrs["schema_version"] = 99
    return p


def test_newer_schema_is_a_clear_error(batch, newer_schema):
    from mepipe.torch_dataset import CacheDataset

    with pytest.raises(CacheError, match="schema version 99, newer than this mepipe reads"):
        open_cache(newer_schema)
    with pytest.raises(CacheError, match="schema version 99"):
        CacheDataset(newer_schema)
    rc, so, se = _cli("inspect", newer_schema)
    assert rc == 2 and f"cache {newer_schema} has schema version 99" in se
    rc, so, se = _cli(
        "preprocess", "--manifest", batch["manifest"], "--dataset-name", DS, "--out", newer_schema, "--quiet"
    )
    assert rc == 2 and "schema version 99" in se


@pytest.fixture
def truncated(batch, tmp_path):
    p = tmp_path / "truncated.h5"
    data = batch["out"].read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


def test_truncated_cache_given_to_inspect(truncated):
    rc, so, se = _cli("inspect", truncated)
    assert rc == 2
    assert f"not a readable HDF5 file (truncated or corrupt?): {truncated}" in se


def test_truncated_cache_given_to_training(truncated, tmp_path):
    from mepipe.errors import MepipeError
    from mepipe.torch_dataset import CacheDataset
    from mepipe.train import run

    with pytest.raises(CacheError, match="truncated or corrupt"):
        CacheDataset(truncated, fields=("flow",))
    with pytest.raises(MepipeError, match=str(truncated)):
        run([truncated], model="facesleuth-cva", protocol="loso", epochs=1, out=tmp_path / "run", progress=False)


# ----------------------------------------------------------------------------- security


def test_cache_holds_no_pickles_or_objects(batch):
    """Every dataset is a plain integer, float or string HDF5 type; attributes are strings and numbers."""
    allowed = {h5py.h5t.INTEGER, h5py.h5t.FLOAT, h5py.h5t.STRING}
    seen = []

    def visit(name, obj):
        for k, v in obj.attrs.items():
            assert isinstance(v, (str, bytes, int, float, np.integer, np.floating, np.ndarray)), (name, k, type(v))
            if isinstance(v, np.ndarray):
                assert v.dtype.kind in "iuf", (name, k, v.dtype)
        if isinstance(obj, h5py.Dataset):
            cls = obj.id.get_type().get_class()
            assert cls in allowed, f"{name}: HDF5 type class {cls}"
            if cls != h5py.h5t.STRING:
                assert obj.dtype.kind in "iuf", (name, obj.dtype)
            seen.append(name)

    with h5py.File(batch["out"], "r") as f:
        visit("/", f)
        f.visititems(visit)
    assert "data/flow" in seen and "meta/emotion" in seen and "failures/reason" in seen


class _Payload:
    """Unpickling this object would create a file: evidence that a pickle was executed."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_spool_records_are_loaded_without_pickle(batch, tmp_path):
    import json
    import pickle
    import zlib

    from mepipe.cache import CacheWriter
    from mepipe.cache.spool import _PREFIX, MAGIC, Spool
    from mepipe.recipe import load_recipe, recipe_hash

    recipe = load_recipe("default")
    out = tmp_path / "spooled.h5"
    marker = tmp_path / "EXECUTED"
    w = CacheWriter(out, recipe, recipe_hash(recipe))
    body = pickle.dumps(_Payload(marker))  # a well-formed record whose array claims an object dtype
    header = json.dumps(
        {
            "type": "sample",
            "key": "x/y/z",
            "meta": {"key": "x/y/z"},
            "arrays": [{"name": "aus", "dtype": "|O", "shape": [1], "offset": 0, "nbytes": len(body)}],
        }
    ).encode()
    evil = spool_dir(out) / "log-00000000000000000001-1.bin"
    crc = zlib.crc32(body, zlib.crc32(header))
    evil.write_bytes(_PREFIX.pack(MAGIC, len(header), len(body), crc) + header + body)
    assert Spool(out).keys() == {"x/y/z"}
    w.close()  # commits the spool: the object dtype is refused, never unpickled
    assert not marker.exists()
    with open_cache(out) as c:
        assert len(c) == 0


def _outside_manifest(root: Path) -> Path:
    sub = root / "inner"
    sub.mkdir(exist_ok=True)
    m = sub / "outside.csv"
    m.write_text(
        HEADER + f"s,up,../clips/good,0,1,,happiness,\ns,abs,{root / 'clips' / 'good'},0,1,,happiness,\n",
        encoding="utf-8",
    )
    return m


def test_manifest_paths_cannot_leave_its_folder(batch, tmp_path):
    m = _outside_manifest(batch["root"])
    out = tmp_path / "outside.h5"
    rc, so, se = _cli("preprocess", "--manifest", m, "--out", out, "--quiet")
    assert rc == 0, se
    with open_cache(out) as c:
        assert len(c) == 0
        fails = c.failures.set_index("key")
    for sid in ("up", "abs"):
        reason = fails.loc[f"outside/s/{sid}", "reason"]
        assert fails.loc[f"outside/s/{sid}", "stage"] == "annotation"
        assert "is outside the dataset root" in reason and "--allow-outside-root" in reason and str(m) in reason


def test_manifest_paths_may_leave_its_folder_when_allowed(batch, tmp_path):
    m = _outside_manifest(batch["root"])
    out = tmp_path / "allowed.h5"
    rc, so, se = _cli("preprocess", "--manifest", m, "--out", out, "--allow-outside-root", "--quiet")
    assert rc == 0, se
    with open_cache(out) as c:
        assert sorted(c.meta["key"]) == ["outside/s/abs", "outside/s/up"] and len(c.failures) == 0
