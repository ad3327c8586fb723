"""``make bench``: generate what is missing, then run every benchmark and print a summary.

    .venv/bin/python bench/run_all.py [--sizes 10k,100k,1m] [--backends sqlite,postgres]
                                      [--seconds 15] [--regenerate]

SQLite goes up to 100k requests, PostgreSQL up to 1M (~10M history entries); the 1M database
takes about ten minutes to generate on two cores and is kept for later runs under
``changeflow_bench_1m``. Results land in bench/results/*.json; docs/BENCHMARKS.md reports them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from common import ROOT, SIZES, database_exists, database_url

HERE = Path(__file__).resolve().parent
LARGEST = {"sqlite": "100k", "postgres": "1m"}


def step(*args: str) -> None:
    """Run one benchmark script with this interpreter; stop on failure."""
    print(f"\n== {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, str(HERE / args[0]), *args[1:]], check=True, cwd=ROOT)


def main() -> None:
    """Everything, in an order where each database exists before it is measured."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10k,100k,1m")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--seconds", default="15")
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args()
    sizes = [s for s in args.sizes.split(",") if s in SIZES]
    for backend in args.backends.split(","):
        usable = [s for s in sizes if SIZES[s] <= SIZES[LARGEST[backend]]]
        for size in usable:
            if args.regenerate or not database_exists(database_url(backend, size)):
                step("generate.py", "--backend", backend, "--size", size)
            step("http_bench.py", "--backend", backend, "--size", size, "--seconds", args.seconds)
        if len(usable) > 1:
            step("list_growth.py", "--backend", backend, "--sizes", f"{usable[0]},{usable[-1]}")
        if usable:
            step("audit_verify.py", "--backend", backend, "--size", usable[-1])
        step("engine_micro.py", "--backend", backend)
    step("ddl_analysis.py")
    step("summary.py")


if __name__ == "__main__":
    main()
