"""End to end: synthetic micro-expressions on real faces -> preprocess -> cache, checked against ground truth."""

import numpy as np
import pytest

from mepipe.cache import open_cache
from mepipe.warp import endpoint_error


def gt_in_aligned_frame(gt: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """Ground-truth flow (frame pixels) seen in the aligned frame: f(y) = A d(M^-1 y) for M = [A | t]."""
    import cv2

    a = m[:, :2]
    comps = [
        cv2.warpAffine(gt[k], m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT) for k in range(2)
    ]
    d = np.stack(comps)
    return np.einsum("ij,jhw->ihw", a, d).astype(np.float32)


def test_cache_contents(synth_cache, synth_set):
    with open_cache(synth_cache) as c:
        meta = c.meta
        assert len(c) == 8 and sorted(c.fields) == [
            "ahmsa",
            "apex",
            "flow",
            "landmarks",
            "onset",
            "strain",
            "transform",
        ]
        assert set(meta.subject) == {"s01", "s02"} and "label" not in meta  # labels are chosen at training
        assert c.emotions == sorted(set(meta.emotion)) and (meta.aus_known == 1).all()
        assert c.annotations == [
            {
                "dataset": "synth",
                "file": "manifest.csv",
                "sheet": "",
                "sha256": __import__("mepipe.labels").labels.file_sha256(synth_set),
            }
        ]
        r = c.read(0)
        assert r["onset"].shape == (128, 128, 3) and r["flow"].shape == (2, 128, 128)
        assert r["landmarks"].shape == (2, 478, 2) and r["ahmsa"].shape == (3, 28, 28)
        assert "opencv-contrib-python" in c.attrs["versions"] and "mediapipe" in c.attrs["versions"]


def test_flow_matches_ground_truth(synth_cache):
    """The cached flow recovers the synthetic displacement, mapped into the aligned frame."""
    with open_cache(synth_cache) as c:
        ratios = []
        for i in range(len(c)):
            r = c.read(i)
            src = c.meta.source.iloc[i]
            gt = np.load(f"{src}/gt_flow.npy")
            assert np.allclose(r["transform"][0], r["transform"][1])  # default mode: one transform for both
            g = gt_in_aligned_frame(gt, r["transform"][0], 128)
            moving = np.sqrt((g**2).sum(0)) > 0.25 * np.sqrt((g**2).sum(0)).max()
            epe = endpoint_error(r["flow"], g, moving)
            ratios.append(epe / endpoint_error(np.zeros_like(g), g, moving))
        # TV-L1 on 128 px aligned faces with sensor noise recovers most of the motion; zero flow scores 1.0
        assert np.median(ratios) < 0.5, ratios


def test_rerun_skips_everything(synth_cache, synth_set):
    from mepipe.datasets import read_manifest
    from mepipe.recipe import load_recipe
    from mepipe.runner import preprocess

    before = synth_cache.read_bytes()
    samples, _ = read_manifest(synth_set, dataset="synth")
    s = preprocess(samples, synth_cache, load_recipe("default"), progress=False)
    assert (s.done, s.skipped, len(s.failed)) == (0, 8, 0)
    with open_cache(synth_cache) as c:
        assert len(c) == 8
    assert len(before) > 0


def test_cli_preprocess_inspect_and_recipe_refusal(synth_set, tmp_path, capsys):
    from mepipe.cli import main

    out = tmp_path / "c.h5"
    rc = main(["preprocess", "--manifest", str(synth_set), "--out", str(out), "--limit", "2", "--quiet", "--strict"])
    assert rc == 0 and len(open_cache(out)) == 2
    assert "2 done, 0 skipped" in capsys.readouterr().out
    rc = main(["inspect", str(out), "--sheet", str(tmp_path / "sheet.png"), "-n", "2"])
    text = capsys.readouterr().out
    assert rc == 0 and "2 samples" in text and "flow" in text
    import cv2

    sheet = cv2.imread(str(tmp_path / "sheet.png"))
    assert sheet is not None and sheet.shape[0] > 100
    rc = main(["preprocess", "--manifest", str(synth_set), "--out", str(out), "--flow-engine", "opencv", "--quiet"])
    assert rc == 2 and "another recipe" in capsys.readouterr().err


def test_broken_sample_does_not_stop_the_batch(synth_set, tmp_path):
    import shutil

    from mepipe.cli import main

    root = tmp_path / "set"
    shutil.copytree(synth_set.parent, root)
    lines = (root / "manifest.csv").read_text().splitlines()
    victim = lines[1].split(",")[2]
    shutil.rmtree(root / victim)
    rc = main(
        [
            "preprocess",
            "--manifest",
            str(root / "manifest.csv"),
            "--out",
            str(tmp_path / "c.h5"),
            "--limit",
            "3",
            "--quiet",
            "--strict",
        ]
    )
    assert rc == 1
    with open_cache(tmp_path / "c.h5") as c:
        assert len(c) == 3  # the missing clip is found when the manifest is read; three good ones follow
        (f,) = c.failures.to_dict("records")
        assert f["stage"] == "annotation" and victim in f["reason"] and f["key"].endswith(lines[1].split(",")[1])


@pytest.mark.parametrize("engine", ["numba"])
def test_other_flow_engine_through_the_pipeline(synth_set, tmp_path, engine):
    from mepipe.cli import main

    out = tmp_path / f"{engine}.h5"
    assert (
        main(
            [
                "preprocess",
                "--manifest",
                str(synth_set),
                "--out",
                str(out),
                "--limit",
                "1",
                "--quiet",
                "--strict",
                "--flow-engine",
                engine,
            ]
        )
        == 0
    )
    with open_cache(out) as c:
        assert c.recipe["flow"]["engine"] == engine and np.isfinite(c.read(0)["flow"]).all()
