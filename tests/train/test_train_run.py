"""End-to-end training runs on tiny caches: outputs, resume, selection rules, parallel folds, errors."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import f1_score, recall_score

from mepipe.cache import CacheError
from mepipe.models import create_model
from mepipe.train import Results, TrainError, demo_table, engine, run

from .conftest import make_cache

EPOCHS = 2


@pytest.fixture(scope="module")
def small_cache(tmp_path_factory):
    """3 subjects x 3 classes x 1 sample: LOSO has 3 folds of 3 test samples."""
    d = tmp_path_factory.mktemp("small")
    return make_cache(
        d / "small.h5", "synth", ["s1", "s2", "s3"], ["negative", "positive", "surprise"], per_class=1, seed=3
    )


def _kw(tiny_ahmsa, **over):
    kw = dict(model="ahmsa-net", epochs=EPOCHS, batch_size=4, lr=1e-3, model_kwargs=tiny_ahmsa, progress=False)
    kw.update(over)
    return kw


@pytest.fixture(scope="module")
def loso_run(small_cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "loso"
    tiny = {"dims": [8, 8, 8], "depths": [1, 1, 1], "heads": 1}
    return run([small_cache], out=out, **_kw(tiny))


def test_outputs_and_pooled_metrics(loso_run, small_cache):
    res = loso_run
    out = res.out
    for name in ("results.json", "predictions.csv", "confusion.png", "curves.png"):
        assert (out / name).is_file(), name
    pred = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    assert list(pred.columns[:6]) == ["key", "dataset", "subject", "fold", "true", "pred"]
    assert len(pred) == 9 and pred["key"].is_unique
    # each subject is the test set of exactly one fold
    assert pred.groupby("subject")["fold"].nunique().eq(1).all() and pred["fold"].nunique() == 3
    yt, yp = pred["true_index"].to_numpy(), pred["pred_index"].to_numpy()
    truth = sorted(set(yt))
    assert res.metrics["accuracy"] == pytest.approx((yt == yp).mean())
    assert res.metrics["uf1"] == pytest.approx(f1_score(yt, yp, labels=truth, average="macro", zero_division=0))
    assert res.metrics["uar"] == pytest.approx(recall_score(yt, yp, labels=truth, average="macro", zero_division=0))
    d = json.loads((out / "results.json").read_text())
    assert d["selection"] == {"rule": "final", "optimistic": False, "note": engine.SELECTION_NOTES["final"]}
    assert d["device"] == "cpu" and d["versions"]["torch"] == torch.__version__
    assert d["config"]["epochs"] == EPOCHS and d["config"]["protocol"] == "loso"
    assert [f["name"] for f in d["per_fold"]] == ["synth/s1", "synth/s2", "synth/s3"]
    assert all(f["selected_epoch"] == EPOCHS - 1 for f in d["per_fold"])
    assert len(d["curves"]["train loss"]) == EPOCHS
    loaded = Results.load(out)
    assert loaded.metrics == res.metrics


def test_checkpoints_load_with_weights_only(loso_run, small_cache):
    ck = loso_run.paths["checkpoints"]
    assert [p.rsplit("/", 1)[-1] for p in ck] == ["fold-00.pt", "fold-01.pt", "fold-02.pt"]
    state = torch.load(ck[1], weights_only=True)
    model = create_model("ahmsa-net", 3, dims=[8, 8, 8], depths=[1, 1, 1], heads=1)
    model.load_state_dict(state)
    # the checkpoint reproduces the fold's test predictions
    from mepipe.torch_dataset import CacheDataset

    pred = loso_run.predictions
    rows = pred[pred["fold"] == 1]
    ds = CacheDataset(small_cache, fields=("ahmsa",))
    idx = [int(np.flatnonzero(ds.meta["key"] == k)[0]) for k in rows["key"]]
    x = torch.stack([ds[i][0]["ahmsa"] for i in idx])
    model.eval()
    with torch.no_grad():
        got = model(ahmsa=x).argmax(1).numpy()
    ds.close()
    assert got.tolist() == rows["pred_index"].tolist()


@pytest.mark.slow
def test_resume_after_a_crash_equals_uninterrupted_run(small_cache, tmp_path, tiny_ahmsa, monkeypatch, loso_run):
    out = tmp_path / "crashy"
    real = engine.train_fold
    calls = []

    def crash_on_third(fold, *a, **k):
        if fold.index == 2:
            raise KeyboardInterrupt("killed")
        calls.append(fold.index)
        return real(fold, *a, **k)

    monkeypatch.setattr(engine, "train_fold", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        run([small_cache], out=out, **_kw(tiny_ahmsa))
    assert calls == [0, 1] and not (out / "results.json").exists()
    calls.clear()
    monkeypatch.setattr(engine, "train_fold", lambda fold, *a, **k: (calls.append(fold.index), real(fold, *a, **k))[1])
    res = run([small_cache], out=out, **_kw(tiny_ahmsa))
    assert calls == [2]  # resumed at the first unfinished fold
    pd.testing.assert_frame_equal(res.predictions, loso_run.predictions)
    assert res.metrics == loso_run.metrics
    for a, b in zip(res.paths["checkpoints"], loso_run.paths["checkpoints"]):
        sa, sb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.slow
def test_partial_folds_then_finish(small_cache, tmp_path, tiny_ahmsa, loso_run):
    out = tmp_path / "partial"
    part = run([small_cache], out=out, folds=[0, 1], **_kw(tiny_ahmsa))
    assert not part.complete and part.metrics["n"] == 6
    assert any(n.startswith("INCOMPLETE") for n in part.metrics["notes"])
    full = run([small_cache], out=out, **_kw(tiny_ahmsa))
    assert full.complete
    pd.testing.assert_frame_equal(full.predictions, loso_run.predictions)


@pytest.mark.slow
def test_resume_with_other_settings_is_refused(small_cache, tmp_path, tiny_ahmsa, loso_run):
    with pytest.raises(TrainError, match="epochs"):
        run([small_cache], out=loso_run.out, **_kw(tiny_ahmsa, epochs=EPOCHS + 1))
    out = tmp_path / "again"
    shutil.copytree(loso_run.out, out)
    res = run([small_cache], out=out, resume=False, **_kw(tiny_ahmsa, epochs=1))
    assert all(f["selected_epoch"] == 0 for f in res.per_fold)


@pytest.mark.slow
def test_test_best_is_labelled_optimistic(small_cache, tmp_path, tiny_ahmsa):
    res = run([small_cache], out=tmp_path / "tb", select="test-best", **_kw(tiny_ahmsa, epochs=3))
    d = json.loads((res.out / "results.json").read_text())
    assert d["selection"]["rule"] == "test-best" and d["selection"]["optimistic"] is True
    assert "OPTIMISTIC" in d["metrics"]["notes"][0]
    assert "OPTIMISTIC" in res.table()
    # the selected epoch is the first best test accuracy of its fold
    for f in d["per_fold"]:
        rec = json.loads((res.out / "folds" / f"fold-{f['index']:02d}.json").read_text())
        acc = rec["history"]["test_acc"]
        assert f["selected_epoch"] == int(np.argmax(acc))
        assert f["accuracy"] == pytest.approx(max(acc))
    table = demo_table([res, res.out])
    assert "ahmsa-net*" in table and "optimistic" in table and str(res.paths["confusion"]) in table


@pytest.mark.slow
def test_val_selection_uses_training_subjects_only(pattern_cache, tmp_path, tiny_ahmsa):
    res = run([pattern_cache], out=tmp_path / "val", select="val", **_kw(tiny_ahmsa))
    meta = pd.read_csv(res.paths["predictions"], keep_default_na=False)
    for f in res.per_fold:
        rec = json.loads((res.out / "folds" / f"fold-{f['index']:02d}.json").read_text())
        assert rec["val"] and not set(rec["val"]) & set(rec["test"])
        assert len(rec["history"]["val_uf1"]) == EPOCHS
        assert f["selected_epoch"] == int(np.argmax(rec["history"]["val_uf1"]))
        assert f["train"] + f["val"] + f["test"] == 24
    assert not res.optimistic and len(meta) == 24


@pytest.mark.slow
def test_composite_label_map_namespacing_and_per_dataset(composite_caches, tmp_path, tiny_ahmsa):
    with pytest.raises(TrainError, match="not the MEGC 2019 composite") as e:
        run(list(composite_caches), out=tmp_path / "comp", protocol="composite", **_kw(tiny_ahmsa, epochs=1))
    assert "casme2   negative         88       3   <- differs" in str(e.value)  # the reference-vs-yours table
    res = run(
        list(composite_caches),
        out=tmp_path / "comp",
        protocol="composite",
        allow_partial_composite=True,
        **_kw(tiny_ahmsa, epochs=1),
    )
    assert res.labels["composite"]["matches_reference"] is False and res.config["allow_partial_composite"]
    assert res.labels["classes"] == ["negative", "positive", "surprise"]
    assert res.labels["excluded"] == {"samm/other": 2, "casme2/others": 3}  # the map drops CASME II others, SAMM other
    assert res.metrics["n"] == 3 * 3 + 2 * 3
    # s1 exists in both caches: two folds, not one
    assert [f["name"] for f in res.per_fold] == ["casme2/s1", "casme2/s2", "casme2/s3", "samm/s1", "samm/s2"]
    assert set(res.per_dataset) == {"casme2", "samm"}
    pred = res.predictions
    for ds, v in res.per_dataset.items():
        p = pred[pred["dataset"] == ds]
        truth = sorted(set(p["true_index"]))
        assert v["n"] == len(p)
        assert v["uar"] == pytest.approx(
            recall_score(p["true_index"], p["pred_index"], labels=truth, average="macro", zero_division=0)
        )
    assert "per dataset" in res.table()


@pytest.mark.slow
def test_lodo_holds_each_dataset_out(composite_caches, tmp_path, tiny_ahmsa):
    res = run(
        list(composite_caches),
        out=tmp_path / "lodo",
        protocol="lodo",
        label_map="megc2019-3class",
        **_kw(tiny_ahmsa, epochs=1),
    )
    assert [f["name"] for f in res.per_fold] == ["casme2", "samm"]
    pred = res.predictions
    assert (pred.groupby("dataset")["fold"].nunique() == 1).all()


@pytest.mark.slow
def test_soa_angles_plot_and_paper_noflip(pattern_cache, tmp_path, tiny_soa):
    res = run(
        [pattern_cache],
        "facesleuth-soa",
        out=tmp_path / "soa",
        epochs=2,
        batch_size=8,
        protocol="holdout",
        augment="paper-noflip",
        model_kwargs=tiny_soa,
        progress=False,
    )
    assert (res.out / "angles.png").is_file()
    assert sorted(res.angles) == ["layer 1", "layer 2", "layer 3", "layer 4"]
    assert all(len(v) == 2 and all(0 <= a < 180 for a in v) for v in res.angles.values())
    assert len(res.per_fold) == 1 and res.per_fold[0]["name"] == "holdout"
    saved = json.loads((res.out / "results.json").read_text())
    assert saved["angles_start_deg"] == 45.0 and "facesleuth-soa-frozen" in saved["angles_reading"]
    table = res.table()
    assert f"layer 4 {res.angles['layer 4'][-1]:.1f}°" in table and "started at 45°" in table
    assert "set by its start" in table


def test_angle_reading_only_for_learned_angles():
    from mepipe.angles import is_learned, start_deg

    assert is_learned("facesleuth-soa") and is_learned("facesleuth-soa-shared")
    assert not is_learned("facesleuth-soa-frozen") and not is_learned("facesleuth-cva")
    assert start_deg("facesleuth-soa") == 45.0 and start_deg("facesleuth-soa", {"init_deg": 200}) == 20.0
    assert start_deg("facesleuth-soa-frozen") == 0.0 and start_deg("ahmsa-net") is None


@pytest.mark.slow
def test_parallel_folds_with_dask_on_loopback(small_cache, tmp_path, tiny_ahmsa, loso_run):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        res = run([small_cache], out=tmp_path / "dask", jobs=2, backend="dask", **_kw(tiny_ahmsa))
    assert res.complete and len(res.per_fold) == 3
    pd.testing.assert_frame_equal(res.predictions, loso_run.predictions)


def test_clear_errors(small_cache, tmp_path, tiny_ahmsa, composite_caches):
    with pytest.raises(TrainError, match="unknown model 'nope'"):
        run([small_cache], out=tmp_path / "x", **_kw(tiny_ahmsa, model="nope"))
    with pytest.raises(CacheError, match="cache not found"):
        run([tmp_path / "missing.h5"], out=tmp_path / "x", **_kw(tiny_ahmsa))
    trunc = tmp_path / "trunc.h5"
    data = small_cache.read_bytes()
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(CacheError, match="truncated or corrupt"):
        run([trunc], out=tmp_path / "x", **_kw(tiny_ahmsa))
    with pytest.raises(TrainError, match="several datasets .casme2, samm. whose emotions are written differently"):
        run(list(composite_caches), out=tmp_path / "x", **_kw(tiny_ahmsa))
    with pytest.raises(TrainError, match="unknown device"):
        run([small_cache], out=tmp_path / "x", **_kw(tiny_ahmsa, device="tpu"))
    if not torch.cuda.is_available():
        with pytest.raises(TrainError, match="no CUDA"):
            run([small_cache], out=tmp_path / "x", **_kw(tiny_ahmsa, device="cuda"))
    with pytest.raises(TrainError, match="cannot build model 'ahmsa-net'"):
        run([small_cache], out=tmp_path / "x", **_kw(tiny_ahmsa, model_kwargs={"no_such_option": 1}))
    with pytest.raises(TrainError, match="unknown input field 'landmarks'"):
        run(
            [small_cache],
            out=tmp_path / "x",
            **_kw(tiny_ahmsa, model="resnet18-baseline", model_kwargs={"inputs": ["landmarks"], "width": 4}),
        )
