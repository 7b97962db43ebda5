"""`mepipe predict`: a fold's checkpoint reproduces the run's own test predictions; --protocol all;
inputs computed otherwise are refused, naming what differs."""

import json

import numpy as np
import pandas as pd
import pytest

from mepipe.cache import CacheWriter, SampleRecord, open_cache
from mepipe.train import TrainError, run
from mepipe.train.predict import predict

TINY = {"dims": [8, 8, 8], "depths": [1, 1, 1], "heads": 1}


@pytest.fixture(scope="module")
def loso(pattern_cache, tmp_path_factory):
    return run(
        [pattern_cache],
        "ahmsa-net",
        out=tmp_path_factory.mktemp("pred") / "loso",
        epochs=2,
        batch_size=8,
        lr=1e-3,
        model_kwargs=TINY,
        progress=False,
    )


def test_fold_checkpoint_reproduces_the_runs_test_predictions(loso, pattern_cache, tmp_path):
    res = predict(loso.out, cache=pattern_cache, out=tmp_path / "p.csv", fold=1, progress=False)
    got = pd.read_csv(res["path"], keep_default_na=False)
    assert len(got) == 24 and res["folds"] == [1]
    p = got[[c for c in got.columns if c.startswith("p_")]].to_numpy()
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert (p.argmax(axis=1) == got["pred_index"].to_numpy()).all()
    mine = loso.predictions[loso.predictions["fold"] == 1].set_index("key")
    assert len(mine) == 6
    sub = got.set_index("key").loc[mine.index]
    assert (sub["pred_index"] == mine["pred_index"]).all()  # the fold's own test predictions, again
    assert (sub["true"] == mine["true"]).all()
    assert res["metrics"]["n"] == 24  # every emotion of the cache is one of the run's classes


def test_mean_of_folds_and_fold_choice_required(loso, pattern_cache, tmp_path):
    with pytest.raises(TrainError, match="has 4 folds: choose one with --fold"):
        predict(loso.out, cache=pattern_cache, out=tmp_path / "x.csv", progress=False)
    each = [
        pd.read_csv(predict(loso.out, cache=pattern_cache, out=tmp_path / f"f{i}.csv", fold=i, progress=False)["path"])
        for i in range(4)
    ]
    mean = pd.read_csv(
        predict(loso.out, cache=pattern_cache, out=tmp_path / "m.csv", fold="mean", progress=False)["path"]
    )
    cols = [c for c in mean.columns if c.startswith("p_")]
    expect = np.mean([e[cols].to_numpy() for e in each], axis=0)
    assert np.allclose(mean[cols].to_numpy(), expect, atol=2e-6)
    with pytest.raises(TrainError, match="no checkpoint for fold 9"):
        predict(loso.out, cache=pattern_cache, out=tmp_path / "x.csv", fold=9, progress=False)


@pytest.mark.slow
def test_protocol_all_trains_one_model_on_every_sample(pattern_cache, tmp_path):
    res = run(
        [pattern_cache],
        "ahmsa-net",
        protocol="all",
        out=tmp_path / "all",
        epochs=1,
        batch_size=8,
        lr=1e-3,
        model_kwargs=TINY,
        progress=False,
    )
    assert [f["name"] for f in res.per_fold] == ["all"] and res.per_fold[0]["train"] == 24
    assert res.metrics["n"] == 0 and "no test set" in res.metrics["notes"][0]
    out = predict(res.out, cache=pattern_cache, out=tmp_path / "all.csv", progress=False)
    assert out["folds"] == [0] and out["n"] == 24
    with pytest.raises(TrainError, match="no test set to select on"):
        run(
            [pattern_cache],
            "ahmsa-net",
            protocol="all",
            select="test-best",
            out=tmp_path / "tb",
            epochs=1,
            model_kwargs=TINY,
            progress=False,
        )


def _copy_with_recipe(src, dst, recipe, drop=()):
    with open_cache(src) as c:
        w = CacheWriter(dst, recipe=recipe, recipe_hash="other", commit_every=1000)
        meta = c.meta
        for i in range(len(c)):
            r = c.read(i)
            fields = {k: r[k] for k in c.fields if k not in drop}
            w.add(
                SampleRecord(
                    r["key"],
                    fields,
                    {k: meta[k][i].item() if hasattr(meta[k][i], "item") else meta[k][i] for k in meta.columns},
                    r["aus"],
                )
            )
        w.close()
    return dst


def test_inputs_computed_otherwise_are_refused(loso, pattern_cache, tmp_path):
    other = _copy_with_recipe(pattern_cache, tmp_path / "other.h5", {"test": True, "align": {"size": 64}})
    with pytest.raises(TrainError, match=r"align\.size differ"):
        predict(loso.out, cache=other, out=tmp_path / "x.csv", fold=0, progress=False)
    with open_cache(pattern_cache) as c:
        recipe = c.recipe
    nofield = _copy_with_recipe(pattern_cache, tmp_path / "nofield.h5", recipe, drop=("ahmsa",))
    with pytest.raises(TrainError, match="lacks the field"):
        predict(loso.out, cache=nofield, out=tmp_path / "x.csv", fold=0, progress=False)
    with pytest.raises(TrainError, match="label map"):
        predict(
            loso.out, cache=pattern_cache, out=tmp_path / "x.csv", fold=0, label_map="megc2019-3class", progress=False
        )
    with pytest.raises(TrainError, match="no results.json"):
        predict(tmp_path, cache=pattern_cache, out=tmp_path / "x.csv", progress=False)


def test_the_sections_each_input_field_depends_on():
    from mepipe.recipe import FEATURE_SECTIONS, feature_hash, sections_for

    assert sections_for(["onset", "apex", "aus"]) == ("frames", "crop", "align")
    assert sections_for(["strain"]) == ("frames", "crop", "align", "flow", "strain")
    assert sections_for(["ahmsa"]) == sections_for(None) == FEATURE_SECTIONS
    assert sections_for(["aus", "aus_mask"]) == ()
    assert sections_for(["landmarks"]) == FEATURE_SECTIONS  # not listed: depends on everything
    base = {"align": {"size": 128}, "flow": {"preset": "micro"}, "compose": {"layout": "patch-grid"}}
    other = {**base, "compose": {"layout": "bands"}}
    assert feature_hash(base, ["onset", "apex"]) == feature_hash(other, ["onset", "apex"])
    assert feature_hash(base, ["flow"]) == feature_hash(other, ["flow"])
    assert feature_hash(base, ["ahmsa"]) != feature_hash(other, ["ahmsa"])
    assert feature_hash(base) != feature_hash(other)  # the whole recipe, as results.json records it
    moved = {**base, "flow": {"preset": "default"}}
    assert feature_hash(base, ["onset"]) == feature_hash(moved, ["onset"])
    assert feature_hash(base, ["flow"]) != feature_hash(moved, ["flow"])


def test_only_the_settings_the_models_inputs_depend_on_must_agree(loso, pattern_cache, tmp_path):
    """A model of onset and apex accepts a cache whose composition was computed otherwise (its
    inputs are the same arrays) and gives the same predictions; AHMSA-Net, which reads the
    composition, refuses it; a change to the alignment is refused for both."""
    with open_cache(pattern_cache) as c:
        recipe = c.recipe
    rn = run(
        [pattern_cache],
        "resnet18-baseline",
        out=tmp_path / "rn",
        epochs=1,
        batch_size=8,
        lr=1e-3,
        model_kwargs={"inputs": ["onset", "apex"], "input_size": 32, "width": 4},
        progress=False,
    )
    assert tuple(rn.config["inputs"]) == ("onset", "apex")
    composed = _copy_with_recipe(pattern_cache, tmp_path / "c.h5", {**recipe, "compose": {"layout": "bands"}})
    same = predict(rn.out, cache=pattern_cache, out=tmp_path / "a.csv", fold=0, progress=False)
    moved = predict(rn.out, cache=composed, out=tmp_path / "b.csv", fold=0, progress=False)
    a, b = pd.read_csv(same["path"]), pd.read_csv(moved["path"])
    cols = [c for c in a.columns if c.startswith("p_")]
    assert len(a) == 24 and np.array_equal(a[cols].to_numpy(), b[cols].to_numpy())
    with pytest.raises(TrainError, match=r"compose\.layout differ.*ahmsa-net's inputs ahmsa"):
        predict(loso.out, cache=composed, out=tmp_path / "x.csv", fold=0, progress=False)
    aligned = _copy_with_recipe(pattern_cache, tmp_path / "al.h5", {**recipe, "align": {"size": 64}})
    with pytest.raises(TrainError, match=r"align\.size differ.*inputs onset, apex"):
        predict(rn.out, cache=aligned, out=tmp_path / "x.csv", fold=0, progress=False)


def test_predict_cli(loso, pattern_cache, tmp_path, capsys):
    from mepipe.cli import main

    assert (
        main(
            [
                "predict",
                str(loso.out),
                "--cache",
                str(pattern_cache),
                "--fold",
                "0",
                "--out",
                str(tmp_path / "cli.csv"),
                "--quiet",
            ]
        )
        == 0
    )
    assert "24 samples predicted" in capsys.readouterr().out
    assert main(["predict", str(loso.out), "--cache", str(pattern_cache), "--out", str(tmp_path / "c.csv")]) == 2
    assert "--fold" in capsys.readouterr().err
    d = json.loads((loso.out / "results.json").read_text())
    assert d["config"]["caches"][0]["feature_hash"]


def test_a_checkpoint_of_another_model_version_is_one_error(loso, pattern_cache, tmp_path):
    import shutil

    import torch

    old = tmp_path / "old"
    shutil.copytree(loso.out, old)
    ck = old / "fold-01.pt"
    state = torch.load(ck, weights_only=True)
    for k in ("input_scale", "input_fitted"):  # as an AHMSA-Net saved before its input scaling existed
        state.pop(k)
    torch.save(state, ck)
    with pytest.raises(TrainError, match=r"fold-01\.pt does not fit ahmsa-net .*train the run again"):
        predict(old, cache=pattern_cache, out=tmp_path / "p.csv", fold=1, progress=False)
