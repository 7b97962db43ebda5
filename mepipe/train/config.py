"""One checked configuration per training run: :class:`TrainConfig`.

Every choice list lives here once (the CLI offers these, :func:`TrainConfig.create` checks them),
every default comes from the model's registry config (its paper's training settings), and the
config says which of its fields a resumed run must share (:meth:`TrainConfig.identity`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ..aus import AU_LISTS
from ..errors import MepipeError
from ..parallel import BACKENDS
from .augment import AUGMENTATIONS, FLIPPING
from .protocols import PROTOCOLS

SELECTIONS = ("final", "val", "test-best")
CLASS_WEIGHTINGS = ("none", "balanced")
OPTIMIZERS = ("adam", "adamw", "sgd")

OPTIMISTIC_NOTE = (
    "OPTIMISTIC: test-best keeps, for each test fold, the epoch with the best accuracy on that "
    "test fold itself (the selection rule of published MER code). It selects on test data and "
    "overstates performance; use it only to reproduce published figures."
)
SELECTION_NOTES = {
    "final": "final epoch: no model selection (the weights after the last epoch are evaluated)",
    "val": "validation: the epoch with the best UF1 on a validation split carved, subject-disjoint "
    "and stratified, from each fold's training subjects (those subjects are not trained on)",
    "test-best": OPTIMISTIC_NOTE,
}


class TrainError(MepipeError):
    """A training run cannot start or continue (bad settings, incompatible resume, ...)."""


def _choice(what: str, value, choices) -> str:
    v = str(value).lower()
    if v not in choices:
        raise TrainError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")
    return v


def _threads(value) -> int:
    v = int(value)
    if v < 1:
        raise TrainError(f"threads must be >= 1, got {value!r}")
    return v


def _fraction(what: str, value) -> float:
    v = float(value)
    if not 0 < v < 1:
        raise TrainError(f"{what} must lie in (0, 1), got {value!r}")
    return v


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run, checked and completed with the model's defaults.

    Build it with :meth:`create` (which checks each value); fields that the model's registry
    config provides (``epochs``, ``batch_size``, ``lr``, ``optimizer``, ``weight_decay``, the
    scheduler and the SOA angle group) default to it when not given.
    """

    model: str
    protocol: str
    epochs: int
    batch_size: int
    lr: float
    optimizer: str
    weight_decay: float | None
    seed: int = 0
    select: str = "final"
    label_map: str | dict | None = None
    class_weighting: str = "none"
    augment: str = "none"
    model_kwargs: dict = field(default_factory=dict)
    val_fraction: float | None = None  # only with select = "val"
    holdout_fraction: float | None = None  # only with protocol = "holdout"
    scheduler: str | None = None
    scheduler_gamma: float = 1.0
    scheduler_decay_epochs: int | None = None
    theta_lr: float | None = None
    theta_weight_decay: float | None = None
    defaults_source: str = ""
    drop_nonfinite: bool = False  # leave out samples whose inputs hold NaN/inf (else the run is refused)
    composite_list: str | None = None  # the official MEGC 2019 list: it decides membership and labels
    allow_partial_composite: bool = False  # run a composite whose counts differ from the reference
    allow_missing_aus: bool = False  # an AU model on samples some of which have no AU annotation (SMIC)
    au_list: str = "mepipe"  # the AUs of the AU vector (mepipe.aus.AU_LISTS)
    threads: int = 1  # torch threads of every fold, in process or in a worker (results do not depend on --jobs)
    deterministic: bool = False  # torch's deterministic algorithms (and the CUBLAS workspace setting on CUDA)
    device: str = "auto"  # as requested; the run resolves it (mepipe.device)
    jobs: int = 1
    backend: str = "loky"

    #: the fields a resumed run must share with the run that started its folder
    IDENTITY = (
        "model",
        "model_kwargs",
        "protocol",
        "epochs",
        "batch_size",
        "lr",
        "seed",
        "select",
        "label_map",
        "class_weighting",
        "augment",
        "val_fraction",
        "holdout_fraction",
        "optimizer",
        "weight_decay",
        "drop_nonfinite",
        "composite_list",
        "allow_partial_composite",
        "allow_missing_aus",
        "threads",
        "deterministic",
        "au_list",
        "theta_lr",
        "theta_weight_decay",
    )

    @classmethod
    def create(
        cls,
        model: str,
        *,
        protocol: str = "loso",
        epochs: int | None = None,
        batch_size: int | None = None,
        lr: float | None = None,
        optimizer: str | None = None,
        weight_decay: float | None = None,
        seed: int = 0,
        select: str = "final",
        label_map=None,
        class_weighting: str = "none",
        augment: str = "none",
        model_kwargs: dict | None = None,
        val_fraction: float = 0.2,
        holdout_fraction: float = 0.2,
        device: str = "auto",
        jobs: int = 1,
        backend: str = "loky",
        drop_nonfinite: bool = False,
        composite_list=None,
        allow_partial_composite: bool = False,
        allow_missing_aus: bool = False,
        threads: int = 1,
        deterministic: bool = False,
        au_list: str = "mepipe",
    ) -> TrainConfig:
        """Check every option and fill the model's defaults; raises :class:`TrainError` naming the
        first bad one."""
        from ..models import get_config
        from ..parallel import BackendError, resolve_jobs

        try:
            mc = get_config(model)
        except KeyError as e:
            raise TrainError(str(e.args[0])) from None
        protocol = _choice("protocol", protocol, PROTOCOLS)
        select = _choice("selection rule", select, SELECTIONS)
        class_weighting = _choice("class weighting", class_weighting, CLASS_WEIGHTINGS)
        augment = _choice("augmentation", augment, AUGMENTATIONS)
        if augment in FLIPPING:
            from ..models.registry import learned_orientation

            why = learned_orientation(model, model_kwargs if isinstance(model_kwargs, dict) else None)
            if why:
                raise TrainError(
                    f"--augment {augment} mirrors images, but {why}: its angle would no longer measure "
                    f"the data; use --augment paper-noflip or none (docs/training.md, Augmentation)"
                )
        backend = _choice("parallel backend", backend, BACKENDS)
        optimizer = _choice("optimizer", optimizer or mc.optimizer, OPTIMIZERS)
        try:
            jobs = resolve_jobs(jobs)
        except BackendError as e:
            raise TrainError(str(e)) from None
        epochs = int(epochs if epochs is not None else mc.epochs)
        batch_size = int(batch_size if batch_size is not None else mc.batch_size)
        lr = float(lr if lr is not None else mc.lr)
        if epochs < 1:
            raise TrainError(f"epochs must be >= 1, got {epochs}")
        if batch_size < 1:
            raise TrainError(f"batch size must be >= 1, got {batch_size}")
        if not (math.isfinite(lr) and lr > 0):
            raise TrainError(f"lr must be a finite number > 0, got {lr!r}")
        weight_decay = weight_decay if weight_decay is not None else mc.weight_decay
        if weight_decay is not None:
            weight_decay = float(weight_decay)
            if not (math.isfinite(weight_decay) and weight_decay >= 0):
                raise TrainError(f"weight decay must be a finite number >= 0, got {weight_decay!r}")
        if model_kwargs is not None and not isinstance(model_kwargs, dict):
            raise TrainError(f"model kwargs must be a mapping, got {type(model_kwargs).__name__}")
        if protocol == "all" and select == "test-best":
            raise TrainError("--protocol all has no test set to select on; use --select final or val")
        if composite_list is not None:
            from pathlib import Path

            if not Path(composite_list).is_file():
                raise TrainError(f"composite list not found: {composite_list}")
            if protocol not in ("composite", "lodo"):
                raise TrainError(
                    "--composite-list selects the MEGC 2019 composite: it goes with --protocol composite or lodo"
                )
            composite_list = str(composite_list)
        ex = mc.extra
        return cls(
            model=model,
            protocol=protocol,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            weight_decay=weight_decay,
            seed=int(seed),
            select=select,
            label_map=label_map,
            class_weighting=class_weighting,
            augment=augment,
            model_kwargs=dict(model_kwargs or {}),
            val_fraction=_fraction("validation fraction", val_fraction) if select == "val" else None,
            holdout_fraction=_fraction("holdout fraction", holdout_fraction) if protocol == "holdout" else None,
            scheduler=ex.get("scheduler"),
            scheduler_gamma=float(ex.get("gamma", 1.0)),
            scheduler_decay_epochs=ex.get("decay_epochs"),
            theta_lr=ex.get("theta_lr"),
            theta_weight_decay=ex.get("theta_weight_decay"),
            defaults_source=mc.defaults_source,
            drop_nonfinite=bool(drop_nonfinite),
            composite_list=composite_list,
            allow_partial_composite=bool(allow_partial_composite),
            allow_missing_aus=bool(allow_missing_aus),
            threads=_threads(threads),
            deterministic=bool(deterministic),
            au_list=_choice("AU list", au_list, AU_LISTS),
            device=str(device or "auto"),
            jobs=jobs,
            backend=backend,
        )

    def identity(self) -> dict:
        """The settings a resumed run must share (JSON-ready); the composite list by its content."""
        out = {k: getattr(self, k) for k in self.IDENTITY}
        if self.composite_list is not None:
            from ..labels import file_sha256

            out["composite_list"] = {"file": self.composite_list, "sha256": file_sha256(self.composite_list)}
        return out

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)
