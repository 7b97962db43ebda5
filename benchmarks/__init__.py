"""``mepipe bench``: benchmarks, installed beside the library as ``mepipe.benchmarks``.

Each module is one benchmark with a ``register(bench_subparsers)`` function (listed in
:data:`SUBCOMMANDS`) and runs as a script too (``python benchmarks/flow.py ...``). Importing this
package is cheap: a benchmark's module is imported when its subcommand is registered, and its
heavy libraries when it runs. Method and figures: ``benchmarks/README.md``, ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import importlib

#: benchmark modules (``mepipe.benchmarks.<name>``), one ``mepipe bench`` subcommand each
SUBCOMMANDS = ("flow", "pipeline", "soa")


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``mepipe bench <subcommand>`` to a ``mepipe`` subparsers object; returns the bench parser."""
    p = subparsers.add_parser(
        "bench", help="benchmarks (flow engines, the whole pipeline, ...)", description=__doc__.split("\n\n")[0]
    )
    sub = p.add_subparsers(dest="bench_command", metavar="SUBCOMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return p


def main(argv=None) -> int:
    """Run ``mepipe bench`` on its own (the benchmark scripts call this)."""
    parser = argparse.ArgumentParser(prog="mepipe")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)
