"""End-to-end pipeline benchmark: ``python benchmarks/pipeline.py [--out DIR] [--samples 40] [--jobs 2]
[--engine numba --preset micro] [--repeat 2] ...``.

The same as ``mepipe bench pipeline``; see ``mepipe/bench_pipeline.py`` and ``docs/performance.md``.
"""
import sys

from mepipe.bench import main

if __name__ == "__main__":
    sys.exit(main(["bench", "pipeline", *sys.argv[1:]]))
