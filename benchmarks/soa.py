"""SOA under control: does the full ``facesleuth-soa`` model learn the axis planted in its data?

For each target axis θ* (``--targets``, degrees in the reported convention of ``mepipe.angles``:
0 horizontal, 90 vertical = CVA, image y down), start angle (``--inits``, default the model's
``init_deg``) and seed, trains ``facesleuth-soa`` (every component: motion stream with four SOA
layers, Swin FPF, AU vector, head) on onset/apex pairs of an ``--axis`` synthetic set
(``mepipe.synth.axis_pairs``: real faces, classes that differ only in where along θ* the skin moves
along θ*), with the optimiser, learning rates, weight decay, schedule, batch size and epochs of the
model's defaults (``mepipe models facesleuth-soa``). ``--epochs``, ``--batch-size`` and ``--theta-lr``
shorten or speed up a run; every value that differs from the default is printed and recorded.

Every epoch draws a fresh set (``--samples`` pairs of new amplitudes, band positions and noise on the
same subjects' faces), so the angle follows the distribution, not a memorised set; neighbouring
classes overlap (band jitter ``--jitter``), so the loss does not reach zero and the angles keep a
gradient. No crop, alignment or flow stage runs: the pairs come straight from the warp, at
``--size`` px (default 64: the model's ``input_size`` is set to it).

Writes ``soa.json`` (settings, defaults, machine, and ``runs``: ``target_deg``, ``init_deg``,
``seed``, ``final_deg`` (the axis mean of the four layers), ``final_deg_layers``,
``distance_deg_layers``, ``within_5_deg``, angles per epoch, loss and accuracy) and ``soa.png``
(θ per epoch for each layer, dashed targets). ``--model facesleuth-soa-shared`` trains the variant
with one angle for the four layers instead.

    mepipe bench soa --targets 90 60 30 --out benchmarks/results/soa
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

MODEL = "facesleuth-soa"
#: the models whose angle is learned (``--model``)
LEARNED = ("facesleuth-soa", "facesleuth-soa-shared")
#: ``--model`` choices: the learned ones, and the frozen angle for a scan (``--inits`` are then the
#: fixed angles): how well the model does at each angle says whether the data identify the angle
MODELS = (*LEARNED, "facesleuth-soa-frozen")
#: the frozen angles of a scan without ``--inits``
SCAN_DEG = (0.0, 30.0, 60.0, 90.0, 120.0, 150.0)
CLASSES = 3


def settings_against_defaults(epochs=None, batch_size=None, theta_lr=None, model: str = MODEL) -> dict:
    """The run's optimiser settings, the model's defaults, and the list of those that differ."""
    from mepipe.train.config import TrainConfig

    default = TrainConfig.create(model)
    cfg = TrainConfig.create(model, epochs=epochs, batch_size=batch_size)
    if theta_lr is not None:
        cfg = cfg.replace(theta_lr=float(theta_lr))
    keys = (
        "optimizer",
        "lr",
        "weight_decay",
        "theta_lr",
        "theta_weight_decay",
        "batch_size",
        "epochs",
        "scheduler",
        "scheduler_gamma",
        "scheduler_decay_epochs",
    )
    used = {k: getattr(cfg, k) for k in keys}
    defaults = {k: getattr(default, k) for k in keys}
    differs = {k: {"used": used[k], "default": defaults[k]} for k in keys if used[k] != defaults[k]}
    return {"cfg": cfg, "used": used, "defaults": defaults, "differs": differs}


def train_one(
    target: float,
    init: float,
    seed: int,
    cfg,
    samples: int,
    size: int,
    amplitude,
    noise: float,
    jitter: float,
    subjects: int,
    progress: bool = False,
    heldout: int | None = None,
) -> dict:
    """One run: the angles of the four layers after every epoch, the loss and accuracy per epoch,
    and the accuracy on a held-out draw at the end."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from mepipe.angles import axis_distance, axis_mean
    from mepipe.models import create_model
    from mepipe.synth import axis_pairs
    from mepipe.train.fold import batches, build_optimizer, fold_seed

    torch.manual_seed(fold_seed(seed, int(round(target * 1000))))
    model = create_model(cfg.model, CLASSES, input_size=size, init_deg=init)
    opt = build_optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.scheduler_gamma) if cfg.scheduler else None
    decay = cfg.scheduler_decay_epochs if cfg.scheduler_decay_epochs is not None else cfg.epochs
    per = max(1, samples // subjects)
    angles = [[a] for a in model.angles_deg()]
    hist: dict[str, list] = {"train_loss": [], "train_acc": []}
    gen = np.random.default_rng(seed)
    t0 = time.time()
    for epoch in range(cfg.epochs):
        d = axis_pairs(
            target,
            subjects=subjects,
            samples_per_subject=per,
            size=size,
            seed=fold_seed(seed, 1 + epoch),
            amplitude_range=amplitude,
            noise=noise,
            jitter=jitter,
        )
        model.train()
        tot, correct = 0.0, 0
        for b in batches(gen.permutation(len(d["y"])), cfg.batch_size):
            x = {k: torch.from_numpy(d[k][b]) for k in ("onset", "apex", "aus")}
            y = torch.from_numpy(d["y"][b])
            logits = model(**x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(b)
            correct += int((logits.argmax(1) == y).sum())
        if sched is not None and epoch < decay:
            sched.step()
        hist["train_loss"].append(round(tot / len(d["y"]), 4))
        hist["train_acc"].append(round(correct / len(d["y"]), 4))
        for i, a in enumerate(model.angles_deg()):
            angles[i].append(a)
        if progress:
            print(
                f"  θ* {target:g}, start {init:g}, seed {seed}: epoch {epoch + 1}/{cfg.epochs} loss "
                f"{hist['train_loss'][-1]:.3f} θ {' '.join(f'{a:.1f}' for a in model.angles_deg())}",
                flush=True,
            )
    test = axis_pairs(
        target,
        subjects=subjects,
        samples_per_subject=max(1, (heldout or samples) // subjects),
        size=size,
        seed=fold_seed(seed, 0),
        amplitude_range=amplitude,
        noise=noise,
        jitter=jitter,
    )
    model.eval()
    with torch.no_grad():
        logits = model(**{k: torch.from_numpy(test[k]) for k in ("onset", "apex", "aus")})
        test_loss = float(F.cross_entropy(logits, torch.from_numpy(test["y"])))
        pred = logits.argmax(1).numpy()
    final = [a[-1] for a in angles]
    dist = [axis_distance(a, target) for a in final]
    return {
        "target_deg": target,
        "init_deg": init,
        "seed": seed,
        "final_deg": round(axis_mean(final), 3),
        "final_deg_layers": [round(a, 3) for a in final],
        "distance_deg_layers": [round(v, 3) for v in dist],
        "max_distance_deg": round(max(dist), 3),
        "within_5_deg": all(v <= 5.0 for v in dist),
        "layers_within_5_deg": sum(v <= 5.0 for v in dist),
        "start_distance_deg": round(axis_distance(init, target), 3),
        "angle_per_epoch_deg": {f"layer {i + 1}": [round(v, 3) for v in a] for i, a in enumerate(angles)},
        "history": hist,
        "heldout_accuracy": round(float((pred == test["y"]).mean()), 4),
        "heldout_loss": round(test_loss, 4),
        "heldout_pairs": int(len(test["y"])),
        "seconds": round(time.time() - t0, 1),
    }


def bench_soa(
    targets=(90.0, 60.0, 30.0),
    inits=None,
    seeds=1,
    out=None,
    epochs=None,
    batch_size=None,
    theta_lr=None,
    samples: int = 120,
    size: int = 64,
    amplitude=(0.5, 1.5),
    noise: float = 2.0,
    jitter: float = 0.08,
    subjects: int = 5,
    threads: int = 1,
    progress: bool = True,
    model: str = MODEL,
    heldout: int | None = None,
) -> dict:
    """Run every (target, init, seed) and return the summary; with ``out``, write soa.json and soa.png."""
    import torch

    from mepipe.angles import CONVENTION
    from mepipe.models.facesleuth import DEFAULT_INIT_DEG
    from mepipe.parallel import cpu_count

    if size % 16 or size < 32:
        raise ValueError(f"--size must be a multiple of 16, at least 32; got {size}")
    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    if samples < 2 * CLASSES or subjects < 1:
        raise ValueError("need at least 6 samples per epoch and one subject")
    torch.set_num_threads(int(threads))
    if not inits:  # a scan of the frozen angle covers the half circle; a learned one starts at the model's
        inits = list(SCAN_DEG) if model not in LEARNED else [DEFAULT_INIT_DEG]
    inits = [float(i) for i in inits]
    s = settings_against_defaults(epochs, batch_size, theta_lr, model)
    if progress:
        diff = ", ".join(f"{k} {v['used']} (default {v['default']})" for k, v in s["differs"].items())
        print(
            f"mepipe bench soa: {model} at its default optimiser settings"
            + (f" except {diff}" if diff else "")
            + f"; {samples} fresh pairs per epoch at {size} px"
        )
    runs = []
    t0 = time.time()
    for target in targets:
        for init in inits:
            for seed in range(int(seeds)):
                r = train_one(
                    float(target),
                    init,
                    seed,
                    s["cfg"],
                    samples,
                    size,
                    tuple(amplitude),
                    noise,
                    jitter,
                    subjects,
                    progress=False,
                    heldout=heldout,
                )
                runs.append(r)
                if progress and model not in LEARNED:
                    print(
                        f"θ* {target:g}: angle frozen at {init:g}: held-out loss {r['heldout_loss']:.3f}, "
                        f"accuracy {r['heldout_accuracy']:.2f} ({r['heldout_pairs']} pairs; {r['seconds']:.0f} s)",
                        flush=True,
                    )
                elif progress:
                    layers = ", ".join(f"{a:.1f}" for a in r["final_deg_layers"])
                    print(
                        f"θ* {target:g}: start {init:g} -> layers {layers}"
                        f" (axis mean {r['final_deg']:.1f}; {r['layers_within_5_deg']}/4 within 5°; held-out "
                        f"accuracy {r['heldout_accuracy']:.2f}; {r['seconds']:.0f} s)",
                        flush=True,
                    )
    result = {
        "model": model,
        "convention": CONVENTION,
        "optimiser": s["used"],
        "defaults": s["defaults"],
        "differs_from_defaults": s["differs"],
        "data": {
            "samples_per_epoch": samples,
            "subjects": subjects,
            "size": size,
            "classes": CLASSES,
            "amplitude_px": list(amplitude),
            "noise_grey_levels": noise,
            "band_jitter": jitter,
            "fresh_draw_every_epoch": True,
        },
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": cpu_count(),
            "torch_threads": int(threads),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "runs": runs,
        "summary": {
            "n_runs": len(runs),
            "runs_within_5_deg": sum(r["within_5_deg"] for r in runs),
            "layers_within_5_deg": sum(r["layers_within_5_deg"] for r in runs),
            "n_layers": 4 * len(runs),
            "seconds": round(time.time() - t0, 1),
        },
    }
    if model not in LEARNED:
        result["summary"]["scan"] = angle_scan(runs)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "soa.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        (plot if model in LEARNED else plot_scan)(result, out / "soa.png")
    return result


def angle_scan(runs: list[dict]) -> dict:
    """Frozen-angle runs per target: held-out loss and accuracy (means over seeds) at each fixed
    angle, and the angle with the lowest loss. A loss that hardly changes with the angle means that
    the data, through this model, do not identify the angle: no optimiser can then find it."""
    from collections import defaultdict

    import numpy as np

    from mepipe.angles import axis_distance

    by: dict = defaultdict(lambda: defaultdict(list))
    for r in runs:
        by[r["target_deg"]][r["init_deg"]].append(r)
    scan = {}
    for t, per in by.items():
        rows = [
            {
                "angle_deg": a,
                "distance_deg": round(axis_distance(a, t), 3),
                "heldout_loss": round(float(np.mean([r["heldout_loss"] for r in rs])), 4),
                "heldout_accuracy": round(float(np.mean([r["heldout_accuracy"] for r in rs])), 4),
                "seeds": len(rs),
            }
            for a, rs in sorted(per.items())
        ]
        best = min(rows, key=lambda x: x["heldout_loss"])
        scan[f"{t:g}"] = {
            "angles": rows,
            "best_angle_deg": best["angle_deg"],
            "best_distance_deg": best["distance_deg"],
        }
    return scan


def plot_scan(result: dict, path) -> Path:
    """Held-out loss and accuracy against the frozen angle, one panel per planted axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scan = result["summary"]["scan"]
    fig, axes = plt.subplots(1, len(scan), figsize=(max(5.0, 4.6 * len(scan)), 3.6), squeeze=False)
    for ax, (t, sc) in zip(axes[0], scan.items()):
        a = [r["angle_deg"] for r in sc["angles"]]
        ax.plot(a, [r["heldout_loss"] for r in sc["angles"]], "o-", color="C0", label="held-out loss")
        ax.set_xlabel("frozen θ (deg; 90 = vertical = CVA)")
        ax.set_ylabel("loss", color="C0")
        ax.axvline(float(t), color="k", ls="--", lw=1)
        ax2 = ax.twinx()
        ax2.plot(a, [r["heldout_accuracy"] for r in sc["angles"]], "s:", color="C1", label="accuracy")
        ax2.set_ylabel("accuracy", color="C1")
        ax.set_title(f"θ* = {t}°")
        ax.set_xlim(0, 180)
    fig.suptitle(f"{result['model']}\nheld-out loss at each frozen angle (dashed: planted axis)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot(result: dict, path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = sorted({r["target_deg"] for r in result["runs"]}, reverse=True)
    fig, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets), 3.6), squeeze=False, sharey=True)
    for ax, t in zip(axes[0], targets):
        for r in (r for r in result["runs"] if r["target_deg"] == t):
            for i, (name, v) in enumerate(r["angle_per_epoch_deg"].items()):
                ax.plot(
                    range(len(v)),
                    v,
                    color=f"C{i}",
                    lw=1.2,
                    alpha=0.85,
                    label=name if r is result["runs"][0] or r["seed"] == 0 else None,
                )
        ax.axhline(t, color="k", ls="--", lw=1)
        ax.set_title(f"θ* = {t:g}°")
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 180)
    axes[0][0].set_ylabel("learned θ (deg; 90 = vertical = CVA)")
    axes[0][0].legend(fontsize=8, loc="upper left")
    fig.suptitle(f"{result['model']}\nSOA angle per layer (dashed: planted axis)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def register(bench_sub) -> None:
    from mepipe import cliargs as A

    p = bench_sub.add_parser(
        "soa",
        help="does facesleuth-soa learn a planted motion axis? (soa.json, soa.png)",
        description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--targets", type=A.angle_deg, nargs="+", default=[90.0, 60.0, 30.0], help="planted axes (degrees)")
    p.add_argument(
        "--model", default=MODEL, choices=MODELS, help=f"the SOA model (default {MODEL}: one angle per layer)"
    )
    p.add_argument(
        "--inits",
        type=A.angle_deg,
        nargs="+",
        default=None,
        help="start angles (default: the model's, 45); with facesleuth-soa-frozen the fixed angles (default 0 30 ... 150)",
    )
    p.add_argument("--seeds", type=A.positive_int, default=1, help="seeds per (target, start)")
    p.add_argument("--out", required=True, help="folder for soa.json and soa.png")
    p.add_argument("--epochs", type=A.positive_int, default=None, help="default: the model's (99)")
    p.add_argument("--batch-size", type=A.positive_int, default=None, help="default: the model's (50)")
    p.add_argument("--theta-lr", type=A.positive_float, default=None, help="default: the model's (5e-3)")
    p.add_argument("--samples", type=A.positive_int, default=120, help="fresh pairs drawn every epoch")
    p.add_argument(
        "--heldout", type=A.positive_int, default=None, help="pairs of the held-out draw (default: --samples)"
    )
    p.add_argument("--subjects", type=A.positive_int, default=5, help="subjects (faces and their variants)")
    p.add_argument("--size", type=A.positive_int, default=64, help="frame side and model input_size (multiple of 16)")
    p.add_argument(
        "--amplitude",
        type=A.positive_float,
        nargs=2,
        default=[0.5, 1.5],
        metavar=("LO", "HI"),
        help="peak displacement range in px",
    )
    p.add_argument("--noise", type=A.nonneg_float, default=2.0, help="sensor noise sigma in grey levels")
    p.add_argument("--jitter", type=A.nonneg_float, default=0.08, help="band position jitter, fraction of the side")
    p.add_argument("--threads", type=A.positive_int, default=1, help="torch threads")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cli_soa)


def _cli_soa(args) -> int:
    import sys

    if args.size % 16 or args.size < 32:
        print(
            f"mepipe bench soa: error: --size must be a multiple of 16, at least 32; got {args.size}", file=sys.stderr
        )
        return 2
    if args.samples < 2 * CLASSES:
        print(f"mepipe bench soa: error: --samples must be at least {2 * CLASSES}; got {args.samples}", file=sys.stderr)
        return 2
    if args.amplitude[0] > args.amplitude[1]:
        print("mepipe bench soa: error: --amplitude LO HI needs LO <= HI", file=sys.stderr)
        return 2
    res = bench_soa(
        targets=args.targets,
        inits=args.inits,
        seeds=args.seeds,
        out=args.out,
        epochs=args.epochs,
        batch_size=args.batch_size,
        theta_lr=args.theta_lr,
        samples=args.samples,
        size=args.size,
        amplitude=args.amplitude,
        noise=args.noise,
        jitter=args.jitter,
        subjects=args.subjects,
        threads=args.threads,
        progress=not args.quiet,
        model=args.model,
        heldout=args.heldout,
    )
    s = res["summary"]
    if "scan" in s:
        for t, sc in s["scan"].items():
            row = ", ".join(f"{r['angle_deg']:g}: {r['heldout_loss']:.3f}" for r in sc["angles"])
            print(f"θ* {t}: held-out loss per frozen angle {row}; lowest at {sc['best_angle_deg']:g}")
        print(f"{s['seconds']:.0f} s; wrote {Path(args.out) / 'soa.json'}, {Path(args.out) / 'soa.png'}")
        return 0
    print(
        f"{s['runs_within_5_deg']}/{s['n_runs']} runs with every layer within 5° of its axis "
        f"({s['layers_within_5_deg']}/{s['n_layers']} layers); {s['seconds']:.0f} s; wrote "
        f"{Path(args.out) / 'soa.json'}, {Path(args.out) / 'soa.png'}"
    )
    return 0


if __name__ == "__main__":  # python benchmarks/soa.py ... == mepipe bench soa ...
    import sys

    from mepipe.benchmarks import main

    sys.exit(main(["bench", "soa", *sys.argv[1:]]))
