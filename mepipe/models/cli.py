"""``mepipe models``: every registered model with its inputs, size, parameter count and the
training settings it defaults to (and where they come from)."""

from __future__ import annotations

import json


def model_summary(name: str, num_classes: int = 5) -> dict:
    """One model's registry entry as a dict, with its trainable parameter count at ``num_classes``
    (the model is built to count them)."""
    from .registry import create_model, get_config

    cfg = get_config(name)
    model = create_model(name, num_classes)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "name": cfg.name,
        "description": cfg.description,
        "inputs": list(model.config.inputs),
        "input_size": cfg.input_size,
        "parameters": int(n_params),
        "num_classes": num_classes,
        "training": {
            "optimizer": cfg.optimizer,
            "lr": cfg.lr,
            "batch_size": cfg.batch_size,
            "epochs": cfg.epochs,
            "weight_decay": cfg.weight_decay,
            **cfg.extra,
        },
        "defaults_source": cfg.defaults_source,
    }


def _text(s: dict) -> str:
    t = s["training"]
    extra = {k: v for k, v in t.items() if k not in ("optimizer", "lr", "batch_size", "epochs", "weight_decay")}
    lines = [
        f"{s['name']}",
        f"  {s['description']}",
        f"  inputs: {', '.join(s['inputs'])} at {s['input_size']}x{s['input_size']}; "
        f"{s['parameters']:,} trainable parameters ({s['num_classes']} classes)",
        f"  training defaults: {t['optimizer']} lr {t['lr']:g}, batch {t['batch_size']}, {t['epochs']} epochs, "
        f"weight decay {'not set' if t['weight_decay'] is None else format(t['weight_decay'], 'g')}"
        + (", " + ", ".join(f"{k} {v}" for k, v in extra.items()) if extra else ""),
    ]
    if s["defaults_source"]:
        lines.append(f"  source: {s['defaults_source']}")
    return "\n".join(lines)


def main(args) -> int:
    from ..errors import MepipeError
    from .registry import list_models

    names = args.names or list_models()
    unknown = [n for n in names if n not in list_models()]
    if unknown:
        raise MepipeError(f"unknown model(s) {', '.join(unknown)}; bundled models: {', '.join(list_models())}")
    if args.classes < 2:
        raise MepipeError(f"--classes must be >= 2, got {args.classes}")
    summaries = [model_summary(n, args.classes) for n in names]
    if args.json:
        print(json.dumps(summaries, indent=2))
    else:
        print("\n\n".join(_text(s) for s in summaries))
    return 0


def register(subparsers) -> None:
    from .. import cliargs as A

    p = subparsers.add_parser(
        "models",
        help="the bundled models: inputs, parameters, training defaults",
        description="List the registered models (mepipe.models.list_models) with the cache "
        "fields they read, their parameter count and the training settings "
        "`mepipe train` uses by default, with their source. See docs/models.md.",
    )
    p.add_argument("names", nargs="*", help="models to show (default: all)")
    p.add_argument(
        "--classes", type=A.positive_int, default=5, help="output classes for the parameter count (default 5)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=main)
