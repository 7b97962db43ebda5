"""The synthetic micro-expression set: determinism, manifest, exact ground truth, labels."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mepipe.aus import parse_aus
from mepipe.datasets import read_manifest
from mepipe.frames import list_frame_files, read_frames
from mepipe.synth import EMOTIONS, SynthError, detect_landmarks, make_synthetic_set, temporal_profile

ARGS = dict(subjects=3, samples_per_subject=4, seed=7, frames_per_sample=7, size=160, progress=False)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth_a")
    manifest = make_synthetic_set(out, **ARGS)
    info = json.loads((out / "synth.json").read_text())
    return out, manifest, info


def _sample_arrays(out: Path, s: dict):
    """onset, apex as float32 BGR and the ground-truth field of one synth.json sample entry."""
    frames = read_frames(out / s["key"], [s["onset"], s["apex"]])
    gt = np.load(out / s["key"] / "gt_flow.npy")
    return frames[0].astype(np.float32), frames[1].astype(np.float32), gt


@pytest.mark.slow
def test_same_seed_same_bytes_other_seed_differs(synth, tmp_path):
    out, _, _ = synth
    again = tmp_path / "again"
    make_synthetic_set(again, **ARGS)
    a, b = _files(out), _files(again)
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
    other = tmp_path / "other"
    make_synthetic_set(other, **dict(ARGS, seed=8, subjects=1, samples_per_subject=2))
    c = _files(other)
    common = [k for k in c if k.endswith("gt_flow.npy") and k in a]
    assert common and all(a[k] != c[k] for k in common)


def test_manifest_reads_cleanly_and_frames_need_numeric_sort(synth):
    out, manifest, info = synth
    samples, failures = read_manifest(manifest)
    assert failures == []
    assert len(samples) == ARGS["subjects"] * ARGS["samples_per_subject"] == len(info["samples"])
    for s, meta in zip(samples, info["samples"]):
        assert f"{s.subject}/{s.sample_id}" == meta["key"]
        assert s.source == (out / s.subject / s.sample_id).resolve()
        files = list_frame_files(s.source)
        assert len(files) == ARGS["frames_per_sample"]
        numbers = [int(Path(f).stem[3:]) for f in files]
        assert numbers == list(range(meta["first_file_number"], meta["first_file_number"] + len(files)))
        assert sorted(Path(f).name for f in files) != [Path(f).name for f in files]  # lexical order is wrong
        assert (s.onset, s.offset) == (0, ARGS["frames_per_sample"] - 1)
        assert s.onset < s.apex < s.offset
        assert s.emotion in EMOTIONS and s.aus == EMOTIONS[s.emotion][0]
        assert np.allclose(meta["profile"], temporal_profile(ARGS["frames_per_sample"], s.apex), atol=1e-6)


def test_ground_truth_field_maps_apex_back_onto_onset(synth):
    import cv2

    out, _, info = synth
    size = ARGS["size"]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for s in info["samples"]:
        onset, apex, gt = _sample_arrays(out, s)
        assert gt.dtype == np.float32 and gt.shape == (2, size, size)
        back = cv2.remap(apex, xx + gt[0], yy + gt[1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        mag = np.hypot(gt[0], gt[1])
        moving = mag > 0.3 * mag.max()
        err_all = np.abs(back - onset)[8:-8, 8:-8].mean()
        err_moving = np.abs(back - onset)[moving].mean()
        raw_moving = np.abs(apex - onset)[moving].mean()
        # sensor noise sigma 1 on both frames gives ~1.1 grey levels; resampling adds a little
        assert err_all < 2.0, (s["key"], err_all)
        assert err_moving < 0.6 * raw_moving, (s["key"], err_moving, raw_moving)


def test_amplitude_range_and_record(synth):
    out, _, info = synth
    for s in info["samples"]:
        gt = np.load(out / s["key"] / "gt_flow.npy")
        peak = float(np.hypot(gt[0], gt[1]).max())
        assert 0.5 <= peak <= 3.0
        assert peak == pytest.approx(s["amplitude_px"], abs=1e-4)


def test_classes_balanced_and_aus_consistent(synth):
    _, manifest, info = synth
    samples, _ = read_manifest(manifest)
    for subject in {s.subject for s in samples}:
        counts = Counter(s.emotion for s in samples if s.subject == subject)
        assert set(counts) == set(EMOTIONS) and set(counts.values()) == {1}
    for s in samples:
        vec, tokens = parse_aus(s.aus)
        assert sorted(t.au for t in tokens) == sorted(int(a) for a in EMOTIONS[s.emotion][0].split("+"))
        assert vec.sum() == len(tokens)
    assert info["distinct_people"] == 2  # two packaged photographs; the third subject is a variant
    variant = info["subject_list"][2]["variant"]
    assert variant["mirror"] is True and variant["index"] == 1


def test_movement_matches_emotion(synth):
    """Where the skin moves and which way, measured from the field against dlib landmarks of the onset frame."""
    out, _, info = synth
    for s in info["samples"]:
        onset, _, gt = _sample_arrays(out, s)
        lm = detect_landmarks(onset.astype(np.uint8))  # dlib finds the face again in the synthetic frame
        brow_y, eye_y = lm[17:27, 1].mean(), lm[36:48, 1].mean()
        nose_y, mouth_y = lm[31:36, 1].mean(), lm[48:60, 1].mean()
        mag = np.hypot(gt[0], gt[1])
        w = np.where(mag > 0.5 * mag.max(), mag, 0.0)
        yy = np.arange(gt.shape[1])[:, None] * np.ones_like(w)
        upper, lower = w * (yy < eye_y), w * (yy > nose_y)
        v_upper = (gt[1] * upper).sum() / max(upper.sum(), 1e-9)
        v_lower = (gt[1] * lower).sum() / max(lower.sum(), 1e-9)
        centroid_y = (w * yy).sum() / w.sum()
        e = s["emotion"]
        if e == "surprise":
            assert lower.sum() == 0 and v_upper < 0 and centroid_y < eye_y
            assert abs(centroid_y - brow_y) < 0.5 * (eye_y - brow_y) + 6
        elif e == "happiness":
            assert upper.sum() == 0 and v_lower < 0 and centroid_y > eye_y
        elif e == "sadness":
            assert v_upper < 0 and v_lower > 0
        elif e == "disgust":
            assert upper.sum() == 0 and eye_y < centroid_y < mouth_y and (gt[1] * w).sum() < 0
        else:
            pytest.fail(f"unexpected emotion {e}")


def test_faces_folder_skips_images_without_face(tmp_path):
    import cv2

    from mepipe.resources import packaged_faces

    faces = tmp_path / "faces"
    faces.mkdir()
    face = next(p for p in packaged_faces() if p.name == "astronaut.png")
    (faces / "a_face.png").write_bytes(face.read_bytes())
    cv2.imwrite(str(faces / "b_wall.png"), np.full((200, 200, 3), 128, np.uint8))
    manifest = make_synthetic_set(
        tmp_path / "out",
        subjects=2,
        samples_per_subject=1,
        faces=faces,
        size=128,
        frames_per_sample=3,
        emotions=("surprise",),
        progress=False,
    )
    info = json.loads((tmp_path / "out" / "synth.json").read_text())
    assert info["faces"] == ["a_face.png"]
    assert info["skipped_faces"] == [{"file": "b_wall.png", "reason": "no face"}]
    samples, failures = read_manifest(manifest)
    assert failures == [] and [s.emotion for s in samples] == ["surprise", "surprise"]
    with pytest.raises(SynthError, match="no usable face"):
        make_synthetic_set(
            tmp_path / "none", subjects=1, samples_per_subject=1, faces=[faces / "b_wall.png"], progress=False
        )


def test_temporal_profile_shape():
    p = temporal_profile(9, 4)
    assert p[0] == 0 and p[-1] == pytest.approx(0) and p[4] == 1
    assert np.all(np.diff(p[:5]) > 0) and np.all(np.diff(p[4:]) < 0)
    with pytest.raises(SynthError):
        temporal_profile(5, 4)


@pytest.mark.parametrize(
    "kwargs", [dict(subjects=0), dict(frames_per_sample=2), dict(size=64), dict(emotions=("anger",))]
)
def test_bad_arguments_refused(tmp_path, kwargs):
    with pytest.raises(SynthError):
        make_synthetic_set(tmp_path, progress=False, **kwargs)
