"""Recipes: one TOML file per dataset holding every stage parameter."""

from __future__ import annotations

import copy
import hashlib
import json
from importlib import resources
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from .recipe_schema import RecipeError, complete_recipe, validate_recipe  # noqa: F401 (RecipeError re-exported)


def available_recipes() -> list[str]:
    files = resources.files("mepipe.pipelines")
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def load_recipe(name_or_path: str | Path | None = None, overrides: dict | None = None) -> dict:
    """Load a recipe by bundled name (``default``, ``casme2``...) or by path.

    A recipe may say ``base = "default"`` to start from another bundled recipe. ``overrides`` is
    merged last (e.g. ``{"flow": {"engine": "numba"}}``). Every file and the overrides are checked
    against the typed schema (:mod:`mepipe.recipe_schema`): an unknown section or key, a wrong
    type or an out-of-range value raises :class:`RecipeError` naming the file and the key.
    """
    name_or_path = name_or_path or "default"
    p = Path(str(name_or_path))
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise RecipeError(f"recipe file not found: {p}")
        text = p.read_text(encoding="utf-8")
        src = str(p)
    else:
        res = resources.files("mepipe.pipelines") / f"{name_or_path}.toml"
        if not res.is_file():
            raise RecipeError(f"no bundled recipe {name_or_path!r}; available: {', '.join(available_recipes())}")
        text = res.read_text(encoding="utf-8")
        src = f"bundled:{name_or_path}"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"recipe {src} is not valid TOML: {e}") from None
    data = validate_recipe(data, src)  # every key known, typed and in range, before anything runs
    own_name = data.get("name") or (p.stem if src != f"bundled:{name_or_path}" else str(name_or_path))
    base = data.pop("base", None)
    if base is None and src != "bundled:default":
        base = "default"
    if base:
        data = _merge(load_recipe(base), data)
    if overrides:
        data = _merge(data, validate_recipe(overrides, "command line"))
    data["name"] = own_name  # the recipe's own name, not its base's
    return complete_recipe(data)


def recipe_hash(recipe: dict) -> str:
    """Hash of what determines the cache contents (the name and cache-writing options excluded:
    compression and commit timing change how the file is written, not what it holds)."""
    r = {k: v for k, v in recipe.items() if k not in ("name", "description")}
    r = copy.deepcopy(r)
    for k in ("commit_every", "commit_seconds", "commit_growth", "compression", "compression_opts"):
        r.get("cache", {}).pop(k, None)
    r.get("dataset", {}).pop("annotation", None)  # where the annotation file lies does not change the features
    blob = json.dumps(r, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


#: the recipe sections whose settings determine the cached arrays of a sample
FEATURE_SECTIONS = ("frames", "crop", "align", "flow", "strain", "compose")

_IMAGES = ("frames", "crop", "align")
#: the sections each cache field a model can read depends on (data flow one way: frames -> crop ->
#: align -> flow -> strain -> compose); the AU vector and its mask come from the annotations
FIELD_SECTIONS = {
    "onset": _IMAGES,
    "apex": _IMAGES,
    "flow": (*_IMAGES, "flow"),
    "strain": (*_IMAGES, "flow", "strain"),
    "ahmsa": FEATURE_SECTIONS,
    "aus": (),
    "aus_mask": (),
}


def sections_for(fields) -> tuple[str, ...]:
    """The recipe sections that the arrays of ``fields`` depend on (``None``: every feature
    section; a field not listed in :data:`FIELD_SECTIONS` counts as depending on all of them)."""
    if fields is None:
        return FEATURE_SECTIONS
    need = set()
    for f in fields:
        need.update(FIELD_SECTIONS.get(f, FEATURE_SECTIONS))
    return tuple(k for k in FEATURE_SECTIONS if k in need)


def feature_recipe(recipe: dict, fields=None) -> dict:
    """The sections of ``recipe`` that compute a sample's arrays, with the flow section resolved to
    its engine and full TV-L1 parameters (a preset and the values it stands for compare equal).
    ``fields``: only the sections those cache fields depend on (:func:`sections_for`)."""
    from .stages.flow import tvl1_params

    out = {k: copy.deepcopy(recipe.get(k, {})) for k in sections_for(fields)}
    if "flow" not in out:
        return out
    flow = dict(out["flow"])
    engine = flow.pop("engine", "opencv")
    preset = flow.pop("preset", "") or ""
    if preset:
        from .stages.flow import get_preset

        flow.update(get_preset(preset))
    params, extra = tvl1_params(flow)
    extra.pop("threads", None)  # how many threads compute a pair does not change it
    extra.pop("device", None)
    out["flow"] = {"engine": engine, **params, **extra}
    return out


def feature_hash(recipe: dict, fields=None) -> str:
    """Hash of :func:`feature_recipe`: two caches with the same feature hash hold arrays computed
    the same way (a model trained on one may be applied to the other). With ``fields``, only the
    settings those fields depend on count: a model reading onset and apex accepts a cache whose
    flow or composition was computed otherwise."""
    blob = json.dumps(feature_recipe(recipe, fields), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
