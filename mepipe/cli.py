"""The ``mepipe`` command line.

``preprocess``, ``inspect`` and ``demo`` live here; other areas add their subcommands through a
``register(subparsers)`` function in the modules listed in :data:`_PLUGINS`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from . import __version__
from .errors import MepipeError

#: The demo's short training, per model (``facesleuth*`` covers every FaceSleuth variant). Every
#: value differs from the model's default (its paper's training settings, mepipe's model defaults);
#: the demo prints each difference and docs/performance.md ("Demo training") explains and measures
#: them. With the paper's batch 50 / 99 epochs cut to a few epochs, FaceSleuth gets ~30 optimisation
#: steps per fold and stays at chance, AU vector or not: the demo gives it more, cheaper steps (64 px
#: input, half width, batch 4, 25 epochs), no dropout (which slows fitting 24 samples) and horizontal
#: flips (the demo's subjects 3 and 4 are mirrored variants of the faces of subjects 1 and 2) for
#: the models whose orientation flips leave alone; the SOA models, which learn their angle, train
#: unflipped (a flip turns an axis θ into 180° - θ: see mepipe.train.augment).
DEMO_FACESLEUTH = {
    "epochs": 25,
    "batch_size": 4,
    "augment": "hflip",
    "model_kwargs": {"input_size": 64, "width": 16, "embed_dim": 16, "dropout": 0.0},
}
DEMO_SETTINGS = {
    "facesleuth*": DEMO_FACESLEUTH,
    "facesleuth-soa*": {**DEMO_FACESLEUTH, "augment": "none"},
    # AHMSA-Net's paper lr (5e-6 over 800 epochs) cannot move in a few demo epochs
    "ahmsa-net": {"epochs": 10, "batch_size": 8, "lr": 1e-3},
    "*": {"epochs": 10, "batch_size": 8},
}
#: learning rates for the demo's few epochs, where a paper default is tuned for hundreds of epochs
DEMO_LR = {"ahmsa-net": DEMO_SETTINGS["ahmsa-net"]["lr"]}

_PLUGINS = (
    "mepipe.synth",
    "mepipe.datasets.cli",
    "mepipe.models.cli",
    "mepipe.train.cli",
    "mepipe.train.predict",
    "mepipe.train.compare",
    "mepipe.train.paper",
    "mepipe.benchmarks",
)

log = logging.getLogger("mepipe")


# ----------------------------------------------------------------------------- preprocess


def load_samples(args, recipe: dict):
    """Samples, pre-stage failures and the annotation files' provenance for ``preprocess``
    (manifest or dataset adapter). Every annotated sample is kept: labels are chosen at training."""
    from .datasets import load_dataset, load_from_recipe, read_manifest

    if args.manifest:
        result = read_manifest(args.manifest, dataset=args.dataset_name, allow_outside_root=args.allow_outside_root)
    elif recipe.get("dataset", {}).get("name") == args.dataset:
        result = load_from_recipe(recipe, args.root, args.annotation)
    else:
        result = load_dataset(args.dataset, args.root, annotation=args.annotation)
    samples, failures = result
    return list(samples), list(failures), [annotation_provenance(result, samples)]


def annotation_provenance(result, samples) -> dict:
    """``{"dataset", "file", "sha256", "sheet"}`` of the annotation a load read (its file name and
    content hash; a folder scanned without a sheet has no hash)."""
    from .labels import file_sha256

    src = getattr(result, "source", None)
    path = Path(src) if src else None
    ds = sorted({s.dataset for s in samples})
    return {
        "dataset": ",".join(ds),
        "file": path.name if path else "",
        "sha256": file_sha256(path) if path and path.is_file() else "",
        "sheet": str(getattr(result, "sheet", "") or ""),
    }


def cmd_preprocess(args) -> int:
    from .recipe import load_recipe
    from .runner import preprocess

    overrides = {}
    if args.flow_engine:
        overrides.setdefault("flow", {})["engine"] = args.flow_engine
    if args.flow_preset is not None:
        overrides.setdefault("flow", {})["preset"] = args.flow_preset
    if args.dataset and not args.root:
        raise MepipeError("--dataset needs --root FOLDER (the dataset as distributed)")
    if args.dataset_name and not args.manifest:
        raise MepipeError("--dataset-name names the dataset of a --manifest; a --dataset has its own name")
    out = args.out.resolve()
    for what, p in (("--manifest", args.manifest), ("--annotation", args.annotation), ("--recipe", args.recipe)):
        if p and Path(p).exists() and Path(p).resolve() == out:
            raise MepipeError(f"--out {args.out} is the {what} file of this run; give another path for the cache")
    recipe_name = args.recipe or (args.dataset if args.dataset else "default")
    recipe = load_recipe(recipe_name, overrides or None)
    from .runner import check_run

    recipe, _ = check_run(recipe, args.out, args.jobs, args.backend)
    samples, failures, annotations = load_samples(args, recipe)
    if args.limit:
        samples = samples[: args.limit]
    emotions = sorted({s.emotion for s in samples if s.emotion})
    print(
        f"mepipe {__version__}: {len(samples)} samples ({', '.join(emotions) or 'no emotions'}), recipe "
        f"{recipe.get('name')}, flow engine {recipe['flow']['engine']}, jobs {args.jobs} ({args.backend})",
        file=sys.stderr,
    )
    summary = preprocess(
        samples,
        args.out,
        recipe,
        jobs=args.jobs,
        backend=args.backend,
        scheduler=args.scheduler,
        overwrite=args.overwrite,
        annotations=annotations,
        failures=failures,
        progress=not args.quiet,
    )
    print(summary.text())
    if summary.interrupted:
        return 130
    if args.strict and summary.failed:
        return 1
    return 0


# ----------------------------------------------------------------------------- inspect


def cmd_inspect(args) -> int:
    from .cache import CacheError, open_cache

    with open_cache(args.cache) as c:
        try:
            _inspect(c, args)
        except (OSError, ValueError, KeyError, RuntimeError) as e:  # unreadable chunks of a damaged file
            if isinstance(e, CacheError):
                raise
            raise CacheError(f"cache {c.path} is damaged: {type(e).__name__}: {e}") from None
    return 0


def _inspect(c, args) -> None:
    meta = c.meta
    print(
        f"{c.path}: {len(c)} samples, schema {c.attrs.get('schema_version')}, "
        f"mepipe {c.attrs.get('mepipe_version')}, recipe {c.recipe.get('name')} ({c.attrs.get('recipe_hash')})"
    )
    print(f"fields: {', '.join(c.fields)}")
    if len(c):
        r = c.read(0)
        for f in c.fields:
            print(f"  {f:<18} {r[f].dtype} {tuple(r[f].shape)}")
    print(f"emotions: {c.emotions}")
    for a in c.annotations:
        print(
            f"annotation: {a.get('file')} ({a.get('dataset')}, sheet {a.get('sheet') or '-'}, "
            f"sha256 {a.get('sha256', '')[:12] or '-'})"
        )
    print(f"versions: {c.attrs.get('versions')}")
    if len(c):
        print("\nsamples per dataset / subject / emotion:")
        print(f"  datasets: {meta['dataset'].value_counts().to_dict()}")
        print(f"  subjects: {meta['subject'].nunique()}")
        print(f"  emotions: {meta['emotion'].value_counts().to_dict()}")
    bad = c.nonfinite()
    keys = sorted({k for v in bad.values() for k in v})
    print(f"\nsamples with NaN or inf: {len(keys)}")
    for k in keys[: args.max_failures]:
        print(f"  {k}: {', '.join(f for f, v in bad.items() if k in v)}")
    fails = c.failures
    print(f"\nfailures: {len(fails)}")
    for _, row in fails.head(args.max_failures).iterrows():
        print(f"  {row['key']} [{row['stage']}] {row['reason']}")
    if args.sheet:
        from .viz import contact_sheet

        contact_sheet(c, args.sheet, n=args.n)
        print(f"\ncontact sheet: {args.sheet}")


# ----------------------------------------------------------------------------- demo


def cmd_demo(args) -> int:
    """synth -> preprocess -> inspect -> train (CVA, SOA, AHMSA-Net), printing where everything is."""
    import time

    from .cache import open_cache
    from .datasets import read_manifest
    from .recipe import load_recipe
    from .runner import preprocess
    from .synth import make_synthetic_set

    def settings(model: str) -> dict:
        """:data:`DEMO_SETTINGS` of ``model`` (``--epochs`` / ``--batch-size`` override them) and
        ``differs``: (setting, demo value, default) for each setting that is not the model's default."""
        import inspect

        from .models import get_config

        try:
            cfg = get_config(model)
        except KeyError as e:
            raise MepipeError(str(e.args[0])) from None
        fs = model.startswith("facesleuth")
        key = ("facesleuth-soa*" if model.startswith("facesleuth-soa") else "facesleuth*") if fs else model
        base = DEMO_SETTINGS[key if key in DEMO_SETTINGS else "*"]
        kwargs = dict(base.get("model_kwargs", {}))
        if args.no_aus:
            if not fs:
                raise MepipeError(f"--no-aus applies to the FaceSleuth models only, not {model}")
            kwargs["use_aus"] = False
        s = {
            "epochs": args.epochs if args.epochs is not None else base["epochs"],
            "batch_size": args.batch_size if args.batch_size is not None else base["batch_size"],
            "lr": base.get("lr"),
            "augment": base.get("augment", "none"),
            "model_kwargs": kwargs,
        }
        differs = [(k, s[k], getattr(cfg, k)) for k in ("epochs", "batch_size") if s[k] != getattr(cfg, k)]
        if s["lr"] is not None and s["lr"] != cfg.lr:
            differs.append(("lr", s["lr"], cfg.lr))
        if s["augment"] != "none":
            differs.append(("augment", s["augment"], "none"))
        if kwargs:
            from .models.facesleuth import FaceSleuth

            params = inspect.signature(FaceSleuth.__init__).parameters
            for k, v in kwargs.items():
                paper = cfg.input_size if k == "input_size" else params[k].default
                if v != paper:
                    differs.append((k, v, paper))
        s["differs"] = differs
        return s

    t0 = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train = args.epochs is None or args.epochs > 0
    plans = {m: settings(m) for m in args.models} if train else {}  # bad settings stop before the slow part
    print(f"[1/4] synthetic micro-expression set on real faces -> {out / 'synth'}")
    manifest = make_synthetic_set(
        out / "synth", subjects=args.subjects, samples_per_subject=args.samples_per_subject, seed=args.seed
    )
    print(f"[2/4] preprocess -> {out / 'synth.h5'}")
    recipe = load_recipe(args.recipe or "default")
    loaded = read_manifest(manifest, dataset="synth")
    samples, failures = loaded
    summary = preprocess(
        samples,
        out / "synth.h5",
        recipe,
        jobs=args.jobs,
        failures=failures,
        progress=True,
        annotations=[annotation_provenance(loaded, samples)],
    )
    print(summary.text())
    sheet = out / "contact_sheet.png"
    print(f"[3/4] inspect -> {sheet}")
    from .viz import contact_sheet

    with open_cache(out / "synth.h5") as c:
        contact_sheet(c, sheet, n=min(8, len(c)))
    t_prep = time.time() - t0
    results = []
    if train:
        from .train import demo_table, run

        print(f"[4/4] train LOSO on the synthetic set -> {out / 'runs'}")
        print(
            "      short demo runs; settings that differ from each model's defaults (its paper's training "
            'settings, mepipe\'s model defaults; see docs/performance.md, "Demo training"):'
        )
        for model, s in plans.items():
            diff = ", ".join(
                f"{k} {v:g} (default {p:g})"
                if isinstance(v, float) and isinstance(p, float)
                else f"{k} {v} (default {p})"
                for k, v, p in s["differs"]
            )
            print(f"      {model}: {diff or 'none'}")
        if args.no_aus:
            print("      --no-aus: FaceSleuth without the AU vector (image path only)")
        for model, s in plans.items():
            name = model + ("-image-only" if args.no_aus else "")
            res = run(
                [out / "synth.h5"],
                model=model,
                protocol="loso",
                epochs=s["epochs"],
                batch_size=s["batch_size"],
                lr=s["lr"],
                device=args.device,
                seed=args.seed,
                out=out / "runs" / name,
                model_kwargs=s["model_kwargs"],
                augment=s["augment"],
                resume=False,
                progress=True,
            )
            results.append(res)
        print()
        print(demo_table(results))
    t_all = time.time() - t0
    print(
        f"\noutputs: synthetic set {out / 'synth'}, cache {out / 'synth.h5'}, contact sheet {sheet}"
        + (f", runs {out / 'runs'}" if results else "")
    )
    print(
        f"demo time: {t_all:.0f} s (synthesis + preprocessing + contact sheet {t_prep:.0f} s, "
        f"training {t_all - t_prep:.0f} s)"
    )
    return 0


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from . import cliargs as A

    p = A.Parser(prog="mepipe", description="Micro-expression recognition pipeline.")
    p.add_argument("--version", action="version", version=f"mepipe {__version__}")
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log debug messages and show the native libraries' output (MediaPipe, TensorFlow Lite)",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    pp = sub.add_parser("preprocess", help="raw dataset -> HDF5 cache (crop, align, flow, strain)")
    src = pp.add_argument_group("input (one of)").add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", type=Path, help="CSV manifest: subject,sample_id,path,onset,apex,offset,emotion,aus")
    src.add_argument("--dataset", help="a supported dataset (see `mepipe datasets`), with --root")
    pp.add_argument("--root", type=Path, help="the dataset folder as distributed")
    pp.add_argument("--annotation", type=Path, help="annotation file, overriding the dataset's usual file names")
    pp.add_argument("--dataset-name", help="dataset name recorded for a manifest (default: its file stem)")
    pp.add_argument("--out", type=Path, required=True, help="output cache (.h5)")
    pp.add_argument("--recipe", help="bundled recipe name or a .toml path (default: the dataset's, else default)")
    pp.add_argument("--flow-engine", help="override the recipe's flow engine (opencv, numba, torch)")
    pp.add_argument(
        "--flow-preset",
        help="set every TV-L1 parameter from a preset: 'default' (OpenCV's defaults), 'micro'; '' for the recipe's own",
    )
    pp.add_argument("--jobs", type=A.jobs, default=1, help="worker processes (default 1; -1: every core)")
    pp.add_argument(
        "--backend",
        default="local",
        choices=["local", "loky", "threading", "dask", "ray"],
        help="joblib backend for --jobs > 1: local (default: on Linux, workers forked from this process "
        "once it has loaded the models, so they start warm; loky elsewhere), loky, threading, "
        "dask or ray (a cluster)",
    )
    pp.add_argument("--scheduler", help="dask scheduler or ray address (default: a local cluster)")
    pp.add_argument(
        "--overwrite", action="store_true", help="discard an existing cache (e.g. written by another recipe)"
    )
    pp.add_argument("--strict", action="store_true", help="exit 1 when any sample failed")
    pp.add_argument("--allow-outside-root", action="store_true", help="let manifest paths leave the manifest's folder")
    pp.add_argument("--limit", type=A.positive_int, help="only the first N samples (a quick look)")
    pp.add_argument("--quiet", action="store_true", help="no progress bar")
    pp.set_defaults(func=cmd_preprocess)

    pi = sub.add_parser("inspect", help="summarise a cache; optionally write a contact sheet PNG")
    pi.add_argument("cache", type=Path)
    pi.add_argument("--sheet", type=Path, help="write a contact sheet PNG (onset, apex, flow, strain, landmarks)")
    pi.add_argument("-n", type=A.positive_int, default=8, help="samples on the contact sheet")
    pi.add_argument("--max-failures", type=A.nonneg_int, default=20)
    pi.set_defaults(func=cmd_inspect)

    pd_ = sub.add_parser(
        "demo", help="synthetic set -> preprocess -> inspect -> train, on real faces shipped in packages"
    )
    pd_.add_argument("--out", type=Path, default=Path("demo-out"))
    pd_.add_argument("--subjects", type=A.positive_int, default=4)
    pd_.add_argument("--samples-per-subject", type=A.positive_int, default=8)
    pd_.add_argument("--seed", type=int, default=0)
    pd_.add_argument("--jobs", type=A.jobs, default=2)
    pd_.add_argument("--recipe", default=None)
    pd_.add_argument(
        "--epochs",
        type=A.nonneg_int,
        default=None,
        help="training epochs of every model (default: per model, DEMO_SETTINGS; 0: no training)",
    )
    pd_.add_argument(
        "--batch-size", type=A.positive_int, default=None, help="batch size of every model (default: per model)"
    )
    pd_.add_argument(
        "--no-aus",
        action="store_true",
        help="FaceSleuth models without the AU vector (image path only), into runs/<model>-image-only",
    )
    pd_.add_argument("--device", default="auto")
    pd_.add_argument("--models", nargs="+", default=["facesleuth-cva", "facesleuth-soa", "ahmsa-net"])
    pd_.set_defaults(func=cmd_demo)

    for mod in _PLUGINS:
        importlib.import_module(mod).register(sub)
    return p


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .quiet import set_verbose

    set_verbose(args.verbose)  # also shows the native libraries' output (MediaPipe, TFLite), in workers too
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    import os
    import signal

    client = os.getpid()

    def _terminate(signum, frame):  # SIGTERM ends a run like Ctrl-C: finished work is committed
        if os.getpid() != client:  # a worker forked from this process: the default action, end now
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise KeyboardInterrupt(f"signal {signum}")

    if threading_main():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        rc = args.func(args)
    except MepipeError as e:
        print(f"mepipe: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mepipe: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
