"""Labels are chosen at training time: one cache, several label maps, no preprocessing in between;
a run resumes only onto the same data; SMIC's cameras are one set of people; AU-less datasets."""

import json

import h5py
import pytest

from mepipe.train import TrainError, run

from .conftest import make_cache

TINY = {"dims": [8, 8, 8], "depths": [1, 1, 1], "heads": 1}
CASME2_EMOTIONS = ["happiness", "disgust", "repression", "surprise", "others", "fear"]


def _kw(**over):
    kw = dict(model="ahmsa-net", epochs=1, batch_size=8, lr=1e-3, model_kwargs=TINY, progress=False)
    kw.update(over)
    return kw


@pytest.fixture(scope="module")
def casme2_like(tmp_path_factory):
    d = tmp_path_factory.mktemp("c2")
    return make_cache(d / "casme2.h5", "casme2", ["sub01", "sub02", "sub03"], CASME2_EMOTIONS, per_class=1)


@pytest.mark.slow
def test_one_cache_three_label_maps_no_preprocessing(casme2_like, tmp_path):
    before = casme2_like.read_bytes()
    native = run([casme2_like], out=tmp_path / "native", **_kw())
    five = run([casme2_like], out=tmp_path / "five", label_map="casme2-5class", **_kw())
    three = run([casme2_like], out=tmp_path / "three", label_map="megc2019-3class", **_kw())
    assert casme2_like.read_bytes() == before  # the cache is read, never rewritten
    assert native.labels["classes"] == sorted(CASME2_EMOTIONS) and native.metrics["n"] == 18
    assert five.labels["classes"] == ["happiness", "disgust", "repression", "surprise", "others"]
    assert five.metrics["n"] == 15 and five.labels["excluded"] == {"casme2/fear": 3}
    assert three.labels["classes"] == ["negative", "positive", "surprise"]
    assert three.labels["counts"] == {"negative": 6, "positive": 3, "surprise": 3}
    assert three.labels["excluded"] == {"casme2/fear": 3, "casme2/others": 3}


@pytest.mark.slow
def test_resume_onto_a_rewritten_cache_is_refused(tmp_path):
    cache = make_cache(tmp_path / "c.h5", "synth", ["s1", "s2", "s3"], ["a", "b"], per_class=1)
    out = tmp_path / "run"
    run([cache], out=out, folds=[0], **_kw())  # fold 0 finished, the others not
    # the same path, rewritten with other labels (another preprocessing run)
    cache.unlink()
    make_cache(cache, "synth", ["s1", "s2", "s3"], ["b", "a"], per_class=1)
    with pytest.raises(TrainError, match=r"other data or settings \(caches differ; cache content changed"):
        run([cache], out=out, **_kw())
    res = run([cache], out=out, resume=False, **_kw())  # explicitly started again: fine
    assert res.complete
    ident = json.loads((out / "run.json").read_text())
    assert ident["caches"][0]["labels_sha256"] and ident["caches"][0]["commit_id"]
    assert ident["threads"] >= 1 and ident["device"] == "cpu" and ident["mepipe"]


@pytest.mark.slow
def test_resume_refuses_another_label_map_and_seed(casme2_like, tmp_path):
    out = tmp_path / "lm"
    run([casme2_like], out=out, label_map="casme2-5class", folds=[0], **_kw())
    with pytest.raises(TrainError, match="label_map"):
        run([casme2_like], out=out, label_map="megc2019-3class", **_kw())
    with pytest.raises(TrainError, match="seed"):
        run([casme2_like], out=out, label_map="casme2-5class", seed=5, **_kw())


@pytest.mark.slow
def test_smic_cameras_share_subjects_and_are_not_mixed(tmp_path):
    hs = make_cache(tmp_path / "hs.h5", "smic", ["s3", "s4"], ["negative", "positive"], per_class=1)
    vis = make_cache(tmp_path / "vis.h5", "smic-vis", ["s3", "s4"], ["negative", "positive"], per_class=1)
    with pytest.raises(TrainError, match="smic and smic-vis record the same people and events"):
        run([hs, vis], out=tmp_path / "mix", label_map="megc2019-3class", **_kw())
    res = run([vis], out=tmp_path / "vis", **_kw())
    assert sorted(f["name"] for f in res.per_fold) == ["smic/s3", "smic/s4"]  # people, whatever the camera


@pytest.mark.slow
def test_au_model_refuses_au_less_samples_unless_allowed(tmp_path, tiny_soa):
    smic = make_cache(
        tmp_path / "smic.h5", "smic", ["s1", "s2"], ["negative", "positive"], per_class=1, aus_known=False
    )
    with h5py.File(smic, "r") as f:
        assert (f["meta/aus_known"][:] == 0).all()
    kw = _kw(
        model="facesleuth-cva",
        model_kwargs=tiny_soa,  # the tiny FaceSleuth widths (CVA takes the same kwargs)
    )
    with pytest.raises(TrainError, match="smic annotate no AUs"):
        run([smic], out=tmp_path / "au", **kw)
    run([smic], out=tmp_path / "ahmsa", **_kw())  # a model without AUs is fine


@pytest.mark.slow
def test_au_mask_reaches_the_model(tmp_path, caplog, tiny_soa):
    """With au_mask the engine loads ``aus_mask`` (0 for the AU-less dataset) and passes it: the model
    refuses a call without it, so a finished run shows that the mask arrived."""
    import json

    from mepipe.train.data import build_table, load_inputs

    smic = make_cache(
        tmp_path / "smic.h5", "smic", ["s1", "s2"], ["negative", "positive"], per_class=1, aus_known=False
    )
    res = run(
        [smic],
        out=tmp_path / "masked",
        allow_missing_aus=True,
        **_kw(model="facesleuth-cva", model_kwargs={**tiny_soa, "au_mask": True}),
    )
    cfg = json.loads((res.out / "results.json").read_text())["config"]
    assert cfg["inputs"] == ["onset", "apex", "aus", "aus_mask"]
    from mepipe.train.config import TrainConfig

    table, _, _ = build_table([smic], TrainConfig.create("facesleuth-cva"))
    data = load_inputs([smic], table, ("aus", "aus_mask"))
    assert data["aus_mask"].shape == (len(table), 1) and (data["aus_mask"] == 0).all()
    # without the mask the run is allowed but warned about
    with caplog.at_level("WARNING", logger="mepipe.train"):
        run(
            [smic], out=tmp_path / "plain", allow_missing_aus=True, **_kw(model="facesleuth-cva", model_kwargs=tiny_soa)
        )
    assert "au_mask" in caplog.text
