"""Optical flow onset -> apex behind one engine interface.

An engine turns two grey uint8 frames into float32 ``(2, H, W)`` flow (u, v in pixels) such that
``prev(x) ≈ next(x + flow(x))``. Parameters use the names of OpenCV's ``DualTVL1OpticalFlow``.
Engines: ``opencv`` (the reference), ``numba`` and ``torch`` (registered by their modules).
"""
from __future__ import annotations

import importlib
from typing import Callable

import numpy as np

from ..errors import StageError

#: TV-L1 parameters, with OpenCV's defaults.
TVL1_DEFAULTS = {
    "tau": 0.25,
    "lambda": 0.15,
    "theta": 0.3,
    "nscales": 5,
    "warps": 5,
    "epsilon": 0.01,
    "innerIterations": 30,
    "outerIterations": 10,
    "scaleStep": 0.8,
    "gamma": 0.0,
    "medianFiltering": 5,
    "useInitialFlow": False,
}

#: Named parameter sets (OpenCV names, any engine). ``default``: OpenCV's defaults. ``micro``:
#: chosen by ``mepipe bench flow --sweep`` (docs/performance.md, "Flow engines") as the fastest
#: numba setting whose mean EPE on the benchmark set (real faces, 0.5-3 px smooth motion, noise
#: sigma 1) is no worse than OpenCV's defaults at both 128² and 256²: all 5 pyramid levels but one
#: warp each, median filtering every 10 iterations, stopping at a mean squared update of 0.02².
PRESETS: dict[str, dict] = {
    "default": {},
    "micro": {"nscales": 5, "warps": 1, "medianFiltering": 5, "epsilon": 0.02, "innerIterations": 10},
}


def list_presets() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> dict:
    """The full TV-L1 parameter dict (OpenCV names) of preset ``name``."""
    if name not in PRESETS:
        raise ValueError(f"unknown flow preset {name!r}; available: {', '.join(PRESETS)}")
    params, _ = tvl1_params(PRESETS[name])
    return params


_ENGINES: dict[str, Callable] = {}
#: engines provided by other modules, imported on first use
_LAZY = {"numba": "mepipe.stages.flow_numba", "torch": "mepipe.stages.flow_torch"}


def register_engine(name: str, factory: Callable) -> None:
    _ENGINES[name] = factory


def list_engines() -> list[str]:
    return sorted(set(_ENGINES) | set(_LAZY))


def tvl1_params(params: dict | None) -> tuple[dict, dict]:
    """``(tvl1, extra)``: OpenCV defaults completed by ``params``, and the other (engine-specific) keys."""
    params = dict(params or {})
    params.pop("engine", None)
    out = dict(TVL1_DEFAULTS)
    extra = {k: v for k, v in params.items() if k not in TVL1_DEFAULTS}
    out.update({k: v for k, v in params.items() if k in TVL1_DEFAULTS})
    return out, extra


def get_engine(name: str = "opencv", preset: str | None = None, **params):
    """Build a flow engine by name with TV-L1 parameters (OpenCV names).

    ``preset`` (e.g. ``"micro"``, as in a recipe's ``[flow] preset = "micro"``) starts from a named
    parameter set; parameters given explicitly override it.
    """
    if preset:
        params = {**get_preset(preset), **params}
    if name not in _ENGINES and name in _LAZY:
        importlib.import_module(_LAZY[name])
    if name not in _ENGINES:
        raise ValueError(f"unknown flow engine {name!r}; available: {', '.join(list_engines())}")
    return _ENGINES[name](**params)


def engine_from_recipe(flow_section: dict | None):
    """The engine a recipe's ``[flow]`` section describes.

    ``engine`` names it (default: the recipe schema's, ``numba``); other keys are TV-L1 parameters. ``preset``, when set, replaces every TV-L1
    parameter with the preset's full set (:func:`get_preset`: ``"default"`` is OpenCV's defaults,
    ``"micro"`` the measured micro-motion setting), whatever the section lists.
    """
    from ..recipe_schema import section_defaults

    flow = dict(flow_section or {})
    name = flow.pop("engine", section_defaults("flow")["engine"])
    preset = flow.pop("preset", "") or ""
    if preset:
        flow.update(get_preset(preset))  # raises for an unknown preset
    return get_engine(name, **flow)


def _check_pair(prev: np.ndarray, nxt: np.ndarray):
    if prev.ndim != 2 or nxt.ndim != 2:
        raise ValueError(f"flow needs two grey (H, W) frames, got shapes {prev.shape} and {nxt.shape}")
    if prev.shape != nxt.shape:
        raise ValueError(f"flow frames differ in size: {prev.shape} vs {nxt.shape}")


class OpenCVTVL1:
    """Reference engine: ``cv2.optflow.DualTVL1OpticalFlow``."""

    name = "opencv"

    def __init__(self, **params):
        self.params, extra = tvl1_params(params)
        self.extra = extra  # engine options of other engines (ignored here)
        self._algo = None

    def _get(self):
        if self._algo is None:
            import cv2

            p = self.params
            self._algo = cv2.optflow.DualTVL1OpticalFlow_create(
                tau=p["tau"],
                lambda_=p["lambda"],
                theta=p["theta"],
                nscales=int(p["nscales"]),
                warps=int(p["warps"]),
                epsilon=p["epsilon"],
                innnerIterations=int(p["innerIterations"]),  # sic: OpenCV's keyword
                outerIterations=int(p["outerIterations"]),
                scaleStep=p["scaleStep"],
                gamma=p["gamma"],
                medianFiltering=int(p["medianFiltering"]),
                useInitialFlow=bool(p["useInitialFlow"]),
            )
        return self._algo

    def compute(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        _check_pair(prev, nxt)
        f = self._get().calc(np.ascontiguousarray(prev), np.ascontiguousarray(nxt), None)
        return np.ascontiguousarray(f.transpose(2, 0, 1), dtype=np.float32)

    def compute_batch(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        return np.stack([self.compute(a, b) for a, b in zip(prev, nxt)])


register_engine("opencv", OpenCVTVL1)


def compute_flow(onset_grey: np.ndarray, apex_grey: np.ndarray, engine) -> np.ndarray:
    """Run ``engine`` on one pair; any failure becomes a ``StageError('flow', ...)``."""
    try:
        flow = engine.compute(onset_grey, apex_grey)
    except Exception as e:  # engines are third-party code: report, do not crash the batch
        raise StageError("flow", f"flow engine {getattr(engine, 'name', engine)!r} failed: {e}") from e
    if not np.isfinite(flow).all():
        raise StageError("flow", "flow engine returned non-finite values")
    return flow
