"""Each dataset's fixture tree through the whole pipeline: adapter -> crop -> align -> flow -> cache."""

import json

import pytest

from mepipe.cache import open_cache
from mepipe.cli import main
from mepipe.datasets import load_from_recipe
from mepipe.recipe import load_recipe

CASES = [
    ("casme2", "casme2_tree"),
    ("samm", "samm_tree"),
    ("smic", "smic_tree"),
    ("casme3", "casme3_tree"),
    ("mmew", "mmew_tree"),
]


@pytest.mark.parametrize("name,tree", CASES)
@pytest.mark.slow
def test_dataset_through_pipeline(name, tree, request, tmp_path):
    spec = request.getfixturevalue(tree)
    recipe = load_recipe(name)
    samples, load_failures = load_from_recipe(recipe, spec["root"])
    kept = samples[:4]  # the first samples the CLI run below processes (--limit 4): every one, no label map
    out = tmp_path / f"{name}.h5"
    rc = main(
        ["preprocess", "--dataset", name, "--root", str(spec["root"]), "--out", str(out), "--limit", "4", "--quiet"]
    )
    assert rc == 0
    with open_cache(out) as c:
        assert c.recipe["name"] == name and c.annotations and c.annotations[0]["dataset"] == samples[0].dataset
        meta = c.meta.set_index("key")
        fails = c.failures
        # every sample is in the cache or recorded as failed, never both, never lost
        stage_fail = {k for k in fails.key[fails.stage != "annotation"]}
        assert set(meta.index) | stage_fail == {s.key for s in kept}
        assert not set(meta.index) & stage_fail
        assert len(meta) >= 1, fails.to_dict("records")
        # bad annotation rows found by the adapter are in the failures table, by key
        # (a duplicate row's failure is filed as KEY#n so it never collides with the kept sample)
        assert {f.key for f in load_failures} <= {k.split("#")[0] for k in fails.key}
        for s in kept:
            if s.key not in meta.index:
                continue
            row = meta.loc[s.key]
            assert (row.onset, row.apex) == (s.onset, s.apex)
            assert row.onset_frame == (s.frame_numbers[0] if s.frame_numbers[0] is not None else -1)
            assert row.apex_estimated == int(s.apex_estimated) and row.emotion == s.emotion
            assert row.objective == s.objective and row.aus_known == int(s.aus_known)
            assert [tuple(n) for n in json.loads(row.notes)] == [tuple(n) for n in s.notes]
            r = c.read(c.index_of(s.key))
            assert r["flow"].shape == (2, 128, 128) and r["ahmsa"].shape == (3, 28, 28)
