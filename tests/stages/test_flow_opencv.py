"""The reference TV-L1 engine on a known warp of a real face."""

import numpy as np
import pytest

from mepipe.stages.flow import compute_flow, get_engine, get_preset, list_engines
from mepipe.warp import endpoint_error, gaussian_bumps, warp_forward


@pytest.fixture(scope="module")
def face_pair():
    import cv2

    from mepipe.resources import packaged_faces

    grey = cv2.imread(str(packaged_faces()[-1]), cv2.IMREAD_GRAYSCALE)  # grace_hopper.jpg
    face = cv2.resize(grey[100:400, 110:410], (128, 128), interpolation=cv2.INTER_AREA)
    # AU-like bumps: brows up (1.5 px) and a mouth corner pulled out and up (2 px)
    gt = gaussian_bumps(face.shape, [(45, 40), (83, 40), (88, 92)], [(0, -1.5), (0, -1.5), (1.4, -1.4)], [10, 10, 9])
    return face, warp_forward(face, gt), gt


def test_recovers_known_field(face_pair):
    face, apex, gt = face_pair
    flow = compute_flow(face, apex, get_engine("opencv"))
    assert flow.shape == (2, 128, 128) and flow.dtype == np.float32
    moving = np.sqrt((gt**2).sum(0)) > 0.3
    epe = endpoint_error(flow, gt, moving)
    zero = endpoint_error(np.zeros_like(gt), gt, moving)
    # Measured: OpenCV defaults reach ~0.1 px in the moving region on this pair against 1.3 px for
    # zero flow; 0.25 px leaves room for OpenCV version differences while still failing a flow
    # that is off by a quarter of the motion or points the wrong way.
    assert epe < 0.25 and epe < 0.2 * zero, (epe, zero)
    # the sign convention of the whole project: prev(x) ~ next(x + flow(x))
    assert flow[1][moving].mean() < 0


def test_engine_registry_and_errors():
    assert "opencv" in list_engines()
    with pytest.raises(ValueError, match="unknown flow engine"):
        get_engine("nope")
    e = get_engine("opencv", warps=2)
    assert e.params["warps"] == 2 and e.params["nscales"] == 5
    with pytest.raises(ValueError, match="differ in size"):
        e.compute(np.zeros((8, 8), np.uint8), np.zeros((8, 9), np.uint8))


def test_recipe_preset_wins_over_listed_defaults():
    from mepipe.recipe import load_recipe
    from mepipe.stages.flow import PRESETS, engine_from_recipe

    # default.toml lists the micro values for the numba engine: no preset needed to get them
    e = engine_from_recipe(load_recipe()["flow"])
    assert e.name == "numba" and e.params == get_preset("micro")
    # a preset replaces every listed TV-L1 parameter: "default" is OpenCV's defaults exactly
    r = load_recipe(overrides={"flow": {"engine": "opencv", "preset": "default", "lambda": 0.3}})
    e = engine_from_recipe(r["flow"])
    assert e.name == "opencv" and e.params == get_engine("opencv").params and e.params["warps"] == 5
    r = load_recipe(overrides={"flow": {"preset": "micro", "warps": 4}})
    assert r["flow"]["warps"] == 4  # listed ...
    assert all(engine_from_recipe(r["flow"]).params[k] == v for k, v in PRESETS["micro"].items())  # ... the preset wins
    # explicit API arguments win over a preset
    assert get_engine("opencv", preset="micro", warps=3).params["warps"] == 3
    with pytest.raises(ValueError, match="unknown flow preset"):
        engine_from_recipe({"preset": "turbo"})


def test_every_engine_is_a_flow_engine_with_the_same_checks():
    from mepipe.stages.flow import FlowEngine, get_engine, list_engines

    for name in list_engines():
        e = get_engine(name, threads=1, device="cpu")  # each accepts the others' options: one recipe fits all
        assert isinstance(e, FlowEngine) and e.name == name
        with pytest.raises(ValueError, match=f"unknown TV-L1 parameters for the {name} engine: warpz"):
            get_engine(name, warpz=3)
        with pytest.raises(ValueError, match=f"{name} engine: TV-L1 parameter tau must be a positive number"):
            get_engine(name, tau=-1)
        with pytest.raises(ValueError, match="flow frames differ in size"):
            e.compute(np.zeros((8, 8), np.uint8), np.zeros((8, 9), np.uint8))
        assert e.compute_batch(np.zeros((0, 8, 8), np.uint8), np.zeros((0, 8, 8), np.uint8)).shape == (0, 2, 8, 8)
    assert get_engine("opencv", gamma=0.5).params["gamma"] == 0.5  # OpenCV's illumination term: its own
    with pytest.raises(ValueError, match="gamma .* must be 0 for the numba and torch engines"):
        get_engine("numba", gamma=0.5)
