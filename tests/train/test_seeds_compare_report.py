"""Several seeds, results independent of --jobs, paired comparison of runs, the papers' tables."""

import json

import pandas as pd
import pytest
import torch

from mepipe.train import TrainError, engine, run
from mepipe.train.compare import compare
from mepipe.train.paper import report

from .conftest import make_cache

pytestmark = pytest.mark.slow  # subprocesses, worker pools or whole runs

TINY = {"dims": [8, 8, 8], "depths": [1, 1, 1], "heads": 1}
CASME2_EMOTIONS = ["happiness", "disgust", "repression", "surprise", "others"]


def _kw(**over):
    kw = dict(model="ahmsa-net", epochs=2, batch_size=8, lr=1e-3, model_kwargs=TINY, progress=False)
    kw.update(over)
    return kw


@pytest.fixture(scope="module")
def casme2_like(tmp_path_factory):
    d = tmp_path_factory.mktemp("c2s")
    return make_cache(d / "casme2.h5", "casme2", ["sub01", "sub02", "sub03"], CASME2_EMOTIONS, per_class=1)


@pytest.fixture(scope="module")
def two_seeds(casme2_like, tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds") / "a"
    return run([casme2_like], out=out, seeds=2, label_map="casme2-5class", **_kw())


def test_seeds_give_one_row_each_and_mean_std_and_bootstrap(two_seeds):
    res = two_seeds
    assert res.seeds == [0, 1] and len(res.runs) == 2 and res.complete
    d = json.loads((res.out / "results.json").read_text())
    assert d["kind"] == "seeds" and [r["seed"] for r in d["runs"]] == [0, 1]
    uf1 = [r["metrics"]["uf1"] for r in d["runs"]]
    assert d["summary"]["uf1"]["mean"] == pytest.approx(sum(uf1) / 2)
    assert d["summary"]["uf1"]["std"] == pytest.approx(abs(uf1[0] - uf1[1]) / 2**0.5)
    b = d["bootstrap"]
    assert b["unit"] == "subject" and b["subjects"] == 3 and b["uf1"]["low"] <= b["uf1"]["estimate"] <= b["uf1"]["high"]
    assert "±" in res.table() and "95 % bootstrap" in res.table()
    for s in (0, 1):
        assert (res.out / f"seed-{s}" / "results.json").is_file()


def test_a_single_run_has_its_own_subject_bootstrap(two_seeds):
    """Each seed's own results.json: the bootstrap of its pooled predictions (one run), printed."""
    from mepipe.train.results import Results
    from mepipe.train.stats import bootstrap_ci

    one = Results.load(two_seeds.out / "seed-1")
    p = one.predictions
    want = bootstrap_ci(
        [{"subject": p["subject"].tolist(), "true": p["true_index"].tolist(), "pred": p["pred_index"].tolist()}],
        num_classes=len(one.labels["classes"]),
    )
    assert json.loads(json.dumps(want)) == one.bootstrap  # the same draws, through strict JSON
    assert one.bootstrap["uf1"]["estimate"] == pytest.approx(one.uf1)
    assert one.bootstrap["uar"]["estimate"] == pytest.approx(one.uar)
    assert "95 % bootstrap over 3 subjects" in one.table()


def test_seeds_resume_like_folds(casme2_like, tmp_path, monkeypatch, two_seeds):
    out = tmp_path / "resume"
    real = engine.train_fold
    calls = []

    def crash_in_seed_1(fold, data, y, cfg, ctx, *a, **k):
        if cfg.seed == 1 and fold.index == 1:
            raise KeyboardInterrupt("killed")
        calls.append((cfg.seed, fold.index))
        return real(fold, data, y, cfg, ctx, *a, **k)

    monkeypatch.setattr(engine, "train_fold", crash_in_seed_1)
    with pytest.raises(KeyboardInterrupt):
        run([casme2_like], out=out, seeds=2, label_map="casme2-5class", **_kw())
    assert calls == [(0, 0), (0, 1), (0, 2), (1, 0)]
    calls.clear()
    monkeypatch.setattr(
        engine,
        "train_fold",
        lambda fold, data, y, cfg, ctx, *a, **k: (
            calls.append((cfg.seed, fold.index)),
            real(fold, data, y, cfg, ctx, *a, **k),
        )[1],
    )
    res = run([casme2_like], out=out, seeds=2, label_map="casme2-5class", **_kw())
    assert calls == [(1, 1), (1, 2)]  # seed 0 and seed 1's first fold were not trained again
    assert [r.metrics for r in res.runs] == [r.metrics for r in two_seeds.runs]


def test_results_do_not_depend_on_jobs(casme2_like, tmp_path):
    one = run([casme2_like], out=tmp_path / "j1", label_map="casme2-5class", jobs=1, **_kw())
    two = run([casme2_like], out=tmp_path / "j2", label_map="casme2-5class", jobs=2, backend="loky", **_kw())
    pd.testing.assert_frame_equal(one.predictions, two.predictions)
    for a, b in zip(one.paths["checkpoints"], two.paths["checkpoints"]):
        sa, sb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert one.config["threads"] == 1 and all(f.get("threads", 1) == 1 for f in one.per_fold)


def test_deterministic_is_recorded(casme2_like, tmp_path):
    res = run([casme2_like], out=tmp_path / "det", label_map="casme2-5class", deterministic=True, **_kw(epochs=1))
    assert res.config["deterministic"] is True
    assert not torch.are_deterministic_algorithms_enabled()  # restored after the fold


def test_compare_paired_and_refusals(casme2_like, two_seeds, tmp_path):
    b = run([casme2_like], out=tmp_path / "b", seeds=2, label_map="casme2-5class", **_kw(epochs=1))
    res = compare(two_seeds.out, b.out, tmp_path / "cmp")
    m = res["metrics"]["uf1"]
    assert m["a_mean"] == pytest.approx(two_seeds.summary["uf1"]["mean"])
    assert m["difference"] == pytest.approx(m["a_mean"] - m["b_mean"])
    assert (tmp_path / "cmp" / "compare.md").is_file() and (tmp_path / "cmp" / "compare.png").is_file()
    assert res["per_subject_accuracy"]["subjects"] == 3
    other_map = run([casme2_like], out=tmp_path / "m", seeds=2, label_map="megc2019-3class", **_kw(epochs=1))
    with pytest.raises(TrainError, match="other label maps"):
        compare(two_seeds.out, other_map.out, tmp_path / "x")
    other_seeds = run([casme2_like], out=tmp_path / "s", seeds="0,5", label_map="casme2-5class", **_kw(epochs=1))
    with pytest.raises(TrainError, match="other seeds"):
        compare(two_seeds.out, other_seeds.out, tmp_path / "x")
    fewer = make_cache(tmp_path / "fewer.h5", "casme2", ["sub01", "sub02"], CASME2_EMOTIONS, per_class=1)
    other_samples = run([fewer], out=tmp_path / "f", seeds=2, label_map="casme2-5class", **_kw(epochs=1))
    with pytest.raises(TrainError, match="other samples"):
        compare(two_seeds.out, other_samples.out, tmp_path / "x")


def test_report_puts_runs_beside_the_papers(two_seeds, casme2_like, composite_caches, tmp_path, tiny_soa):
    comp = run(
        list(composite_caches),
        out=tmp_path / "comp",
        protocol="composite",
        allow_partial_composite=True,
        **_kw(epochs=1),
    )
    cva = run(
        [casme2_like],
        out=tmp_path / "cva",
        label_map="casme2-5class",
        **_kw(model="facesleuth-cva", model_kwargs=tiny_soa, epochs=1),
    )
    text = report([two_seeds.out, comp.out, cva.out], tmp_path / "report.md")
    assert "| A (CVA) | reported in the paper | 94.35 / 0.940 | 86.73 / 0.817 | 92.42 / 0.933 |" in text
    acc = f"{100 * cva.metrics['accuracy']:.2f} / {cva.metrics['macro_f1']:.3f}"
    assert f"| A (CVA) | mepipe (final, 1 seed(s)) | {acc} | - | - |" in text
    assert (tmp_path / "report.md").read_text() == text
    assert "reported in the paper" in text and "0.8040 / 0.7821" in text  # AHMSA-Net 3DB, Table 4
    assert "ahmsa-net | mepipe (final, 1 seed(s))" in text
    # the CASME II 5-class AHMSA-Net run has no FaceSleuth table: it is listed as not in a table
    assert "no table of the papers has this setting" in text
