"""Optical flow onset -> apex behind one engine interface.

An engine turns two grey uint8 frames into float32 ``(2, H, W)`` flow (u, v in pixels) such that
``prev(x) ≈ next(x + flow(x))``. Parameters use the names of OpenCV's ``DualTVL1OpticalFlow``.
Engines: ``opencv`` (the reference), ``numba`` and ``torch`` (registered by their modules).
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Callable

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


def check_params(p: dict, name: str) -> None:
    """Raise ``ValueError`` naming engine ``name`` for TV-L1 parameters no engine can use."""
    for key in ("tau", "lambda", "theta", "epsilon"):
        if not np.isfinite(float(p[key])) or float(p[key]) <= 0:
            raise ValueError(f"{name} engine: TV-L1 parameter {key} must be a positive number, got {p[key]!r}")
    if not 0 < float(p["scaleStep"]) < 1:
        raise ValueError(f"{name} engine: TV-L1 parameter scaleStep must be in (0, 1), got {p['scaleStep']!r}")
    for key in ("nscales", "warps", "innerIterations", "outerIterations"):
        if int(p[key]) != p[key] or int(p[key]) < 1:
            raise ValueError(f"{name} engine: TV-L1 parameter {key} must be an integer >= 1, got {p[key]!r}")
    m = int(p["medianFiltering"])
    if m != p["medianFiltering"] or m < 0 or (m > 1 and (m % 2 == 0 or m > 9)):
        raise ValueError(
            f"{name} engine: TV-L1 parameter medianFiltering must be 0/1 (off) or odd 3..9, got "
            f"{p['medianFiltering']!r}"
        )
    if not np.isfinite(float(p["gamma"])) or float(p["gamma"]) < 0:
        raise ValueError(f"{name} engine: TV-L1 parameter gamma must be a number >= 0, got {p['gamma']!r}")


def check_batch(prev: np.ndarray, nxt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a batch of grey uint8 pairs ``(B, H, W)``; returns C-contiguous arrays."""
    prev, nxt = np.asarray(prev), np.asarray(nxt)
    if prev.ndim != 3 or nxt.ndim != 3:
        raise ValueError(f"compute_batch needs (B, H, W) grey frames, got shapes {prev.shape} and {nxt.shape}")
    if prev.shape != nxt.shape:
        raise ValueError(f"flow frames differ in size: {prev.shape} vs {nxt.shape}")
    if prev.dtype != np.uint8 or nxt.dtype != np.uint8:
        raise ValueError(f"flow frames must be uint8 grey images, got {prev.dtype} and {nxt.dtype}")
    if prev.shape[1] < 2 or prev.shape[2] < 2:
        raise ValueError(f"flow frames must be at least 2x2 pixels, got {prev.shape[1:]}")
    return np.ascontiguousarray(prev), np.ascontiguousarray(nxt)


def check_pair(prev: np.ndarray, nxt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate one grey uint8 pair ``(H, W)``."""
    prev, nxt = np.asarray(prev), np.asarray(nxt)
    if prev.ndim != 2 or nxt.ndim != 2:
        raise ValueError(f"flow needs two grey (H, W) frames, got shapes {prev.shape} and {nxt.shape}")
    a, b = check_batch(prev[None], nxt[None])
    return a[0], b[0]


#: engine options besides the TV-L1 parameters; every engine accepts the others' so one recipe fits all
ENGINE_OPTIONS = ("threads", "device")


class FlowEngine(abc.ABC):
    """What every flow engine is: ``FlowEngine(**params)`` with TV-L1 parameters under OpenCV's
    names (completed with OpenCV's defaults, unknown keys refused, values checked by
    :func:`check_params` and the engine's :meth:`check`), ``.params``, ``.options`` (its own
    :data:`ENGINE_OPTIONS`), ``.compute(prev, next) -> (2, H, W)`` and ``.compute_batch(prev, next)
    -> (B, 2, H, W)`` on grey uint8 frames (checked by :func:`check_pair` / :func:`check_batch`).
    Subclasses implement :meth:`_compute` (and :meth:`_compute_batch` where a batch is faster)."""

    name = "flow"
    #: which of ENGINE_OPTIONS this engine uses
    OPTIONS: tuple[str, ...] = ()

    def __init__(self, **params):
        self.params, extra = tvl1_params(params)
        self.options = {k: extra.pop(k) for k in ENGINE_OPTIONS if k in extra if k in self.OPTIONS}
        for k in ENGINE_OPTIONS:
            extra.pop(k, None)
        if extra:
            raise ValueError(f"unknown TV-L1 parameters for the {self.name} engine: {', '.join(sorted(extra))}")
        check_params(self.params, self.name)
        self.check(self.params)
        self.last_iterations = None

    def check(self, params: dict) -> None:
        """Engine-specific limits of the TV-L1 parameters (raise ``ValueError``); by default none
        beyond :func:`check_params`."""
        return None

    def compute(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """Flow ``(2, H, W)`` float32 from ``prev`` to ``nxt`` (grey uint8, same size)."""
        return self._compute(*check_pair(prev, nxt))

    def compute_batch(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """Flows ``(B, 2, H, W)`` float32 for grey uint8 ``(B, H, W)`` pairs."""
        prev, nxt = check_batch(prev, nxt)
        if prev.shape[0] == 0:
            return np.empty((0, 2) + prev.shape[1:], dtype=np.float32)
        return self._compute_batch(prev, nxt)

    @abc.abstractmethod
    def _compute(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """Flow of one checked pair."""

    def _compute_batch(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        return np.stack([self._compute(a, b) for a, b in zip(prev, nxt)])


class OpenCVTVL1(FlowEngine):
    """Reference engine: ``cv2.optflow.DualTVL1OpticalFlow`` (every OpenCV parameter, gamma and
    useInitialFlow included)."""

    name = "opencv"

    def __init__(self, **params):
        super().__init__(**params)
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

    def _compute(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        f = self._get().calc(prev, nxt, None)
        return np.ascontiguousarray(f.transpose(2, 0, 1), dtype=np.float32)


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
