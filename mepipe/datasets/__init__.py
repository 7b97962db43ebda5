"""Dataset adapters: each turns a dataset as distributed into :class:`mepipe.sample.Sample` records.

``load_dataset(name, root, annotation=None, **options) -> (samples, failures)`` dispatches to the
adapter module of ``name`` (``casme2``, ``samm``, ``smic``, ``casme3``, ``mmew``, or ``manifest``
with ``root`` the manifest CSV). ``list_datasets()`` says what each expects to find;
``check_dataset`` returns every problem row at once and ``report_dataset`` what ``mepipe datasets
check`` prints (sheet used, rows, samples, failures by reason, notes by kind).

The pair returned is a :class:`~mepipe.datasets.rows.LoadResult` (a 2-tuple that also carries the
file read and the row counts). Sample notes are ``(kind, text)`` with kinds from
:data:`mepipe.sample.NOTE_KINDS`; failure kinds are :data:`mepipe.datasets.cells.FAILURE_KINDS`.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

from ..errors import AnnotationError
from .manifest import read_manifest

__all__ = [
    "read_manifest",
    "load_dataset",
    "list_datasets",
    "check_dataset",
    "report_dataset",
    "load_from_recipe",
    "DatasetInfo",
]

_MODULES = ("casme2", "samm", "smic", "casme3", "mmew")


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    expects: str
    emotions: tuple[str, ...]
    options: tuple[str, ...]


def _module(name: str):
    key = str(name).lower().replace("(me)^3", "me3").replace("_", "").replace("-", "")
    aliases = {
        "casmeii": "casme2",
        "casme2": "casme2",
        "casme3": "casme3",
        "casme3a": "casme3",
        "samm": "samm",
        "smic": "smic",
        "smichs": "smic",
        "mmew": "mmew",
    }
    mod = aliases.get(key)
    if mod is None:
        raise AnnotationError(f"unknown dataset {name!r}; supported: {', '.join(_MODULES)}, manifest")
    return importlib.import_module(f"{__name__}.{mod}")


def list_datasets() -> list[DatasetInfo]:
    """Every supported dataset: name, description, what its folder must hold, native emotions, options."""
    out = []
    for m in _MODULES:
        mod = importlib.import_module(f"{__name__}.{m}")
        opts = tuple(
            p for p, v in inspect.signature(mod.load).parameters.items() if v.kind is inspect.Parameter.KEYWORD_ONLY
        )
        out.append(DatasetInfo(mod.NAME, mod.DESCRIPTION, mod.EXPECTS, tuple(mod.EMOTIONS), opts))
    out.append(
        DatasetInfo(
            "manifest",
            "any dataset described by a CSV manifest (root = the CSV file)",
            "subject,sample_id,path,onset,apex,offset,emotion,aus (0-based positions)",
            (),
            ("dataset", "allow_outside_root"),
        )
    )
    return out


def load_dataset(name: str, root, annotation=None, **options):
    """Load dataset ``name`` from ``root``. Returns ``(samples, failures)``.

    ``options`` are the adapter's keyword options (``apex_rule``, ``frames``, ``subset``...; see
    ``list_datasets()``); an unknown option raises AnnotationError naming the accepted ones.
    For ``manifest``, ``root`` is the CSV file and ``annotation`` must be None.
    """
    options = {k: v for k, v in options.items() if v is not None and v != ""}
    if str(name).lower() == "manifest":
        if annotation:
            raise AnnotationError("the manifest adapter takes the CSV as root; annotation= is not used")
        allowed = {"dataset", "allow_outside_root"}
        bad = sorted(set(options) - allowed)
        if bad:
            raise AnnotationError(
                f"unknown option(s) for manifest: {', '.join(bad)}; accepted: {', '.join(sorted(allowed))}"
            )
        return read_manifest(root, **options)
    mod = _module(name)
    params = inspect.signature(mod.load).parameters
    allowed = {p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY}
    bad = sorted(set(options) - allowed)
    if bad:
        raise AnnotationError(
            f"unknown option(s) for {mod.NAME}: {', '.join(bad)}; accepted: {', '.join(sorted(allowed)) or 'none'}"
        )
    return mod.load(root, annotation, **options)


def check_dataset(name: str, root, annotation=None, **options):
    """Every problem row of a dataset at once: the ``failures`` of :func:`load_dataset`."""
    _, failures = load_dataset(name, root, annotation, **options)
    return failures


def report_dataset(name: str, root, annotation=None, **options):
    """A :class:`~mepipe.datasets.report.DatasetReport` of one load: what ``mepipe datasets check`` prints."""
    from .report import DatasetReport

    return DatasetReport.from_load(str(name), load_dataset(name, root, annotation, **options))


def load_from_recipe(recipe: dict, root, annotation=None):
    """Load the dataset a recipe's ``[dataset]`` section names (``name`` plus adapter options).

    ``annotation`` given here wins over the recipe's ``annotation`` entry.
    """
    sec = dict(recipe.get("dataset", {}))
    name = sec.pop("name", None)
    if not name:
        raise AnnotationError(f"recipe {recipe.get('name', '?')!r} has no [dataset] name")
    rec_ann = sec.pop("annotation", None)
    return load_dataset(name, root, annotation or rec_ann or None, **sec)
