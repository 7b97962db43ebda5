"""What a finished (or partly finished) run produced: :class:`Results`, also ``out/results.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .config import TrainError


@dataclass
class Results:
    """What a run produced (also written to ``out/results.json``)."""

    out: Path
    config: dict
    metrics: dict
    per_dataset: dict
    per_fold: list
    selection: dict
    device: str
    paths: dict
    labels: dict
    complete: bool
    versions: dict
    curves: dict | None = None
    angles: dict | None = None
    #: 95 % bootstrap intervals of the pooled UF1 and UAR, resampling subjects
    #: (:func:`~mepipe.train.stats.bootstrap_ci`); ``None`` for an unfinished run or one subject
    bootstrap: dict | None = None

    @property
    def uf1(self) -> float:
        return self.metrics["uf1"]

    @property
    def uar(self) -> float:
        return self.metrics["uar"]

    @property
    def optimistic(self) -> bool:
        return bool(self.selection.get("optimistic"))

    @property
    def predictions(self):
        import pandas as pd

        return pd.read_csv(self.paths["predictions"], keep_default_na=False)

    def to_dict(self) -> dict:
        return {
            "config": self.config,
            "versions": self.versions,
            "device": self.device,
            "selection": self.selection,
            "complete": self.complete,
            "labels": self.labels,
            "metrics": self.metrics,
            "per_dataset": self.per_dataset,
            "per_fold": self.per_fold,
            "paths": self.paths,
            "curves": self.curves,
            "angles": self.angles,
            "bootstrap": self.bootstrap,
            "angles_convention": _angles_convention() if self.angles else None,
            "angles_start_deg": self.angles_start() if self.angles else None,
            "angles_reading": self.angles_reading(),
        }

    def angles_start(self) -> float | None:
        """Where the run's SOA angles started (reported convention), ``None`` without angles."""
        from ..angles import start_deg

        try:
            return start_deg(self.config["model"], self.config.get("model_kwargs"))
        except (KeyError, TypeError, ValueError):
            return None

    def angles_reading(self) -> str | None:
        """How to read the run's learned angles (:data:`mepipe.angles.LEARNED_READING`), ``None``
        without learned angles."""
        from ..angles import LEARNED_READING, is_learned

        try:
            return LEARNED_READING if self.angles and is_learned(self.config["model"]) else None
        except (KeyError, TypeError):
            return None

    @classmethod
    def load(cls, out) -> Results:
        """Read a finished run's ``results.json``."""
        p = Path(out) / "results.json"
        if not p.is_file():
            raise TrainError(f"no results.json in {out}: the run has not finished")
        d = json.loads(p.read_text(encoding="utf-8"))
        return cls(
            out=Path(out),
            config=d["config"],
            metrics=d["metrics"],
            per_dataset=d["per_dataset"],
            per_fold=d["per_fold"],
            selection=d["selection"],
            device=d["device"],
            paths=d["paths"],
            labels=d["labels"],
            complete=d["complete"],
            versions=d["versions"],
            curves=d.get("curves"),
            angles=d.get("angles"),
            bootstrap=d.get("bootstrap"),
        )

    def table(self) -> str:
        from .report import results_table

        return results_table(self)

    def __str__(self) -> str:
        return self.table()


def _angles_convention() -> str:
    from ..angles import CONVENTION

    return CONVENTION
