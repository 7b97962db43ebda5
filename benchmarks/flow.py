"""Flow-engine benchmark: ``python benchmarks/flow.py [--out DIR] [--sizes 128 256] [--pairs N] ...``.

The same as ``mepipe bench flow``; see ``mepipe/bench.py`` and ``benchmarks/README.md``.
"""
import sys

from mepipe.bench import main

if __name__ == "__main__":
    sys.exit(main(["bench", "flow", *sys.argv[1:]]))
