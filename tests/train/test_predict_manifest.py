"""`mepipe predict --manifest`: raw clips go through the run's own recipe, then the model."""

import numpy as np
import pandas as pd
import pytest

from mepipe.cache import open_cache


@pytest.mark.slow
def test_manifest_is_preprocessed_with_the_runs_recipe(synth_set, synth_cache, tmp_path, torch_one_thread):
    from mepipe.recipe import feature_hash
    from mepipe.train import run
    from mepipe.train.predict import predict

    res = run(
        [synth_cache],
        "ahmsa-net",
        protocol="all",
        out=tmp_path / "all",
        epochs=1,
        batch_size=4,
        lr=1e-3,
        model_kwargs={"dims": [8, 8, 8], "depths": [1, 1, 1], "heads": 1},
        progress=False,
    )
    from_cache = predict(res.out, cache=synth_cache, out=tmp_path / "c.csv", progress=False)
    from_clips = predict(res.out, manifest=synth_set, out=tmp_path / "m.csv", progress=False)
    with open_cache(synth_cache) as a, open_cache(from_clips["cache"]) as b:
        assert feature_hash(a.recipe) == feature_hash(b.recipe) and len(a) == len(b)
    ca = pd.read_csv(from_cache["path"], keep_default_na=False).set_index("sample_id")
    cb = pd.read_csv(from_clips["path"], keep_default_na=False).set_index("sample_id").loc[ca.index]
    cols = [c for c in ca.columns if c.startswith("p_")]
    # the same clips through the same recipe: the same probabilities (flow may differ by rounding)
    assert np.allclose(ca[cols].to_numpy(), cb[cols].to_numpy(), atol=1e-3)
