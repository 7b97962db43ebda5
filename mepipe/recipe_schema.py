"""The typed recipe: one schema per section, holding every key's type, range and default.

A recipe (``pipelines/*.toml``) is checked against :data:`SECTIONS` before any work starts: an
unknown section or key is refused with the nearest valid name, a value of the wrong type or out
of range names the key, the value and the file. The stages take their defaults from here
(:func:`section_defaults`): there is no second copy of them. ``pipelines/default.toml`` lists the
same values for people to read; a test keeps the two equal.

This module imports nothing heavy (the flow engines' and datasets' names come from modules that
import numpy and the standard library only).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

from .errors import MepipeError


class RecipeError(MepipeError, ValueError):
    """A recipe cannot be used: the message names the file, the section and key, and why."""


@dataclass(frozen=True)
class Param:
    """One recipe key: its type, default, and the values it may take."""

    kind: type  # bool, int, float, str or list
    default: Any
    doc: str = ""
    choices: tuple | None = None  # allowed values (or a callable returning them, see _choices)
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the value must be > low (not >=)
    high_open: bool = False
    optional: bool = False  # the key may be absent (no default applied)

    def check(self, value, where: str):
        """``value`` converted to this key's type, or RecipeError naming ``where``."""
        k = self.kind
        if k is bool:
            if not isinstance(value, bool):
                raise RecipeError(f"{where} must be true or false, got {value!r}")
            return value
        if k is int:
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise RecipeError(f"{where} must be an integer, got {value!r}")
        elif k is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise RecipeError(f"{where} must be a number, got {value!r}")
            value = float(value)
            if not math.isfinite(value):
                raise RecipeError(f"{where} must be a finite number, got {value!r}")
        elif k is str:
            if not isinstance(value, str):
                raise RecipeError(f"{where} must be a string, got {value!r}")
        elif k is list:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise RecipeError(f"{where} must be a list of strings, got {value!r}")
        choices = _choices(self.choices)
        if choices is not None and value not in choices:
            near = _nearest(str(value), [str(c) for c in choices])
            raise RecipeError(f"{where} = {value!r} is not one of {', '.join(repr(c) for c in choices)}{near}")
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            raise RecipeError(f"{where} must be {'>' if self.low_open else '>='} {self.low:g}, got {value!r}")
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            raise RecipeError(f"{where} must be {'<' if self.high_open else '<='} {self.high:g}, got {value!r}")
        return value


def _choices(c):
    return tuple(c()) if callable(c) else c


def _nearest(word: str, names) -> str:
    hit = difflib.get_close_matches(word, list(names), n=1, cutoff=0.6)
    return f" (did you mean {hit[0]!r}?)" if hit else ""


def _engines():
    from .stages.flow import list_engines

    return list_engines()


def _presets():
    from .stages.flow import list_presets

    return ("", *list_presets())


def _templates():
    from .stages.align import TEMPLATES

    return tuple(TEMPLATES)


def _datasets():
    from .datasets import list_datasets

    return tuple(d.name for d in list_datasets())


#: every section and key a recipe may hold, with its default
SECTIONS: dict[str, dict[str, Param]] = {
    "frames": {
        "colour": Param(bool, True, "keep BGR frames in the cache (false: grey, 1 channel)"),
    },
    "crop": {
        "detector": Param(str, "hog", "dlib detector: hog (frontal) or cnn (MMOD)", choices=("hog", "cnn")),
        "box": Param(
            str,
            "detector",
            "square box from the detector rectangle or around dlib's 68 landmarks",
            choices=("detector", "landmarks68"),
        ),
        "upsample": Param(int, 0, "detector upsampling passes", low=0, high=4),
        "detect_max_side": Param(int, 640, "detect on frames shrunk to at most this side (0: as is)", low=0),
        "margin": Param(float, 0.25, "the face box grown by this fraction per side", low=0.0, high=2.0),
        "min_face": Param(int, 40, "faces smaller than this many pixels are refused", low=1),
        "multi_face": Param(str, "largest", "several faces: keep the largest or fail", choices=("largest", "fail")),
    },
    "align": {
        "size": Param(int, 128, "output side in pixels", low=16, high=2048),
        "template": Param(str, "mediapipe-frontal", "canonical positions of the stable points", choices=_templates),
        "mode": Param(
            str, "onset", "apex warped with the onset's transform, or registered onto it", choices=("onset", "register")
        ),
        "eye_span": Param(
            float, 0.46, "outer eye corners' distance, fraction of size", low=0.0, high=1.0, low_open=True
        ),
        "eye_y": Param(
            float, 0.36, "height of the eye line, fraction of size", low=0.0, high=1.0, low_open=True, high_open=True
        ),
        "refine_landmarks": Param(bool, True, "478 landmarks (with irises); false gives 468"),
        "mediapipe_input": Param(int, 256, "side of the crop given to MediaPipe", low=32, high=2048),
        "apex_landmarks": Param(
            str, "flow", "apex landmarks: the onset's moved by the flow, or MediaPipe's", choices=("flow", "mediapipe")
        ),
        "min_detection_confidence": Param(float, 0.5, "MediaPipe face detection threshold", low=0.0, high=1.0),
    },
    "flow": {
        "engine": Param(str, "numba", "flow engine", choices=_engines),
        "preset": Param(str, "", "a preset replacing every TV-L1 parameter ('' = the values listed)", choices=_presets),
        "tau": Param(float, 0.25, "time step", low=0.0, low_open=True),
        "lambda": Param(float, 0.15, "data term weight", low=0.0, low_open=True),
        "theta": Param(float, 0.3, "coupling", low=0.0, low_open=True),
        "nscales": Param(int, 5, "pyramid levels", low=1, high=20),
        "warps": Param(int, 1, "warps per level", low=1, high=50),
        "epsilon": Param(float, 0.02, "stopping threshold", low=0.0, low_open=True),
        "innerIterations": Param(int, 10, "inner iterations", low=1),
        "outerIterations": Param(int, 10, "outer iterations", low=1),
        "scaleStep": Param(float, 0.8, "pyramid scale step", low=0.0, high=1.0, low_open=True, high_open=True),
        "gamma": Param(float, 0.0, "illumination term (OpenCV engine only)", low=0.0),
        "medianFiltering": Param(int, 5, "median filter window (0/1 off)", low=0, high=9),
        "useInitialFlow": Param(bool, False, "OpenCV engine only"),
        "threads": Param(int, None, "numba engine: threads per batch", low=1, optional=True),
        "device": Param(str, None, "torch engine: auto, cpu, cuda or cuda:N", optional=True),
    },
    "strain": {
        "components": Param(bool, False, "also store e_xx, e_yy, e_xy"),
    },
    "compose": {
        "enabled": Param(bool, True, "AHMSA-Net five-region composition"),
        "layout": Param(
            str,
            "patch-grid",
            "where the regions go: on the model's 7x7 patch grid (patch-grid), "
            "HTNet's four 14x14 blocks without the nose (quadrants), or the old bands (bands)",
            choices=("patch-grid", "quadrants", "bands"),
        ),
        "size": Param(int, 28, "side of the composition", low=7, high=1024),
    },
    "cache": {
        "compression": Param(
            str, "none", "none, gzip (readable everywhere) or lzf (h5py only)", choices=("none", "gzip", "lzf")
        ),
        "compression_opts": Param(int, 4, "gzip level", low=0, high=9),
        "commit_every": Param(int, 256, "samples per commit (at least)", low=1),
        "commit_growth": Param(float, 0.25, "and at least this fraction of the samples already cached", low=0.0),
        "commit_seconds": Param(float, 30.0, "and at most this many seconds between commits", low=0.0, low_open=True),
    },
    "dataset": {
        "name": Param(str, "", "the dataset adapter", choices=lambda: ("", *_datasets())),
        "annotation": Param(str, "", "annotation file ('' = found by its usual names under the root)"),
    },
}

#: top-level keys (every other top-level entry must be a section)
TOP_LEVEL = {"name": Param(str, ""), "description": Param(str, ""), "base": Param(str, "")}
#: sections that left the recipe, and where their settings went
_MOVED = {
    "labels": "label maps are chosen at training time (mepipe train --label-map NAME), so one cache serves "
    "every protocol; remove [labels] from the recipe",
    "composite": "the MEGC 2019 composite is a training protocol (mepipe train A.h5 B.h5 C.h5 --protocol "
    "composite [--composite-list combined_3class_gt.csv]); preprocess each dataset into its own cache",
}


def section_defaults(section: str) -> dict:
    """The default value of every key of ``section`` (keys marked optional left out)."""
    return {k: p.default for k, p in SECTIONS[section].items() if not p.optional}


def checked_section(section: str, params: dict | None, source: str = "") -> dict:
    """``params`` of one stage section checked and completed with the defaults (what a stage
    object keeps as its parameters)."""
    checked = validate_recipe({section: dict(params or {})}, source or "parameters")[section]
    return {**section_defaults(section), **checked}


def _dataset_options(name: str) -> dict[str, Param]:
    """The options of dataset adapter ``name``: its ``load()`` keyword-only parameters, typed by
    their defaults."""
    import inspect

    from .datasets import _module

    mod = _module(name)
    out = {}
    for p in inspect.signature(mod.load).parameters.values():
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty:
            kind = type(p.default) if p.default is not None else str
            out[p.name] = Param(kind if kind in (bool, int, float, str) else str, p.default)
    return out


def validate_recipe(recipe: dict, source: str = "recipe") -> dict:
    """Check ``recipe`` against :data:`SECTIONS`; returns a copy with every value converted to its
    type. Raises :class:`RecipeError` naming ``source`` (the file) and the first bad key."""
    out: dict = {}
    for key, value in recipe.items():
        if key in TOP_LEVEL:
            out[key] = TOP_LEVEL[key].check(value, f"{source}: {key}")
            continue
        if key in _MOVED:
            raise RecipeError(f"{source}: section [{key}] is no longer part of a recipe: {_MOVED[key]}")
        if key not in SECTIONS:
            if not isinstance(value, dict):
                near = _nearest(key, list(TOP_LEVEL))
                raise RecipeError(f"{source}: unknown top-level key {key!r}{near}")
            raise RecipeError(
                f"{source}: unknown section [{key}]{_nearest(key, SECTIONS)}; sections are "
                f"{', '.join(f'[{s}]' for s in SECTIONS)}"
            )
        if not isinstance(value, dict):
            raise RecipeError(f"{source}: {key} must be a section ([{key}]), got {value!r}")
        params = dict(SECTIONS[key])
        if key == "dataset" and value.get("name"):
            name = SECTIONS["dataset"]["name"].check(value["name"], f"{source}: [dataset] name")
            params.update(_dataset_options(name))
        sec = {}
        for k, v in value.items():
            where = f"{source}: [{key}] {k}"
            if k not in params:
                raise RecipeError(
                    f"{source}: unknown key {k!r} in [{key}]{_nearest(k, params)}; its keys are {', '.join(params)}"
                )
            sec[k] = None if (v is None and params[k].optional) else params[k].check(v, where)
        out[key] = sec
    return out


def complete_recipe(recipe: dict) -> dict:
    """``recipe`` with every stage section's missing keys set to their defaults."""
    out = dict(recipe)
    for sec in ("frames", "crop", "align", "flow", "strain", "compose", "cache"):
        out[sec] = {**section_defaults(sec), **dict(recipe.get(sec, {}))}
    return out
