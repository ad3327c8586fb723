"""Profile one worker's share of a transition, in process, without gunicorn or a network.

    .venv/bin/python bench/profile_transition.py --backend postgres --size 100k [--count 2000]
    .venv/bin/python bench/profile_transition.py --backend sqlite --size 100k --instructions

Fires ``POST /api/v1/requests/{id}/events/{event}`` through Flask's test client on a generated
database, the vendor's incidents going in_progress ⇄ waiting_hospital exactly as
``http_bench.py`` drives them, and the floor endpoint the same number of times. It prints the
CPU milliseconds per call of each (the ratio the HTTP benchmark's throughput follows on a
CPU-bound machine) and the top of a cProfile of the transitions, sorted by own time and by
cumulative time. Nothing is written to bench/results: this is for finding where time goes.

``--instructions`` counts instead of timing: each of the two runs again under valgrind's
callgrind, which counts the CPU instructions executed while the ``--count`` calls run (and not
while the app starts or warms up). CPU time on a shared host swings by a third from minute to
minute; the count moves by well under 1 %, so a change worth 2 % can be seen. It is slow (about
a minute and a half a run) and needs valgrind (Debian: ``apt install valgrind``).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import os
import pstats
import re
import shutil
import subprocess
import sys
import time

from common import DATA, database_url, tokens_path


def main() -> None:
    """Time and profile transitions against the floor on one generated database."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--size", default="100k")
    parser.add_argument(
        "--count", type=int, help="calls of each (default 2000; 100 with --instructions)"
    )
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--save", help="also write the raw cProfile stats to this file")
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions under valgrind instead"
    )
    parser.add_argument("--only", choices=["transition", "floor"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.count is None:
        args.count = 100 if args.instructions or args.only else 2000
    if args.instructions:
        count_instructions(args)
        return

    url = database_url(args.backend, args.size)
    os.environ["DATABASE_URL"] = url  # read by create_app when wsgi builds the app
    os.environ["CHANGEFLOW_INSTANCE"] = str(DATA / "instance")  # as http_bench.py serves it
    from wsgi import app

    tokens = json.loads(tokens_path(url).read_text())
    client = app.test_client()
    headers = {"Authorization": f"Bearer {tokens['bench_vendor']}"}
    targets = []
    for state in ("in_progress", "waiting_hospital"):
        page = client.get(
            f"/api/v1/requests?kind=incident&state={state}&per_page=200", headers=headers
        ).json
        targets += [[r["id"], r["version"], r["state"]] for r in page["items"]]
    if not targets:
        raise SystemExit("no incidents to move; generate the database first")

    def transition(n: int) -> None:
        target = targets[n % len(targets)]
        event = "wait_for_hospital" if target[2] == "in_progress" else "resume"
        body = {"version": target[1], "fields": {}, "comment": "等待院方确认 / benchmark"}
        response = client.post(
            f"/api/v1/requests/{target[0]}/events/{event}", json=body, headers=headers
        )
        assert response.status_code == 200, response.json
        target[1], target[2] = response.json["version"], response.json["state"]

    floor_versions: dict[int, int | None] = {}

    def floor(n: int) -> None:
        item = 1 + n % 1000
        response = client.post(f"/bench/floor/{item}", json={"version": floor_versions.get(item)})
        floor_versions[item] = (
            response.json["version"] if response.status_code == 200 else response.json["current"]
        )

    for n in range(200):  # warm up caches, pools, compiled statements
        transition(n)
        floor(n)
        floor(n)

    if args.only:
        # Under callgrind, which counts only inside functools.reduce (see count_instructions).
        step = transition if args.only == "transition" else floor
        functools.reduce(lambda _, n: step(n), range(args.count), None)
        return

    def cpu_ms(step) -> float:
        began = time.process_time()
        for n in range(args.count):
            step(n)
        return 1000 * (time.process_time() - began) / args.count

    floor_ms, engine_ms = cpu_ms(floor), cpu_ms(transition)
    print(
        f"{args.backend} {args.size}: transition {engine_ms:.2f} ms CPU, floor {floor_ms:.2f} ms "
        f"CPU per call; floor ÷ transition {floor_ms / engine_ms:.2f}"
    )
    # CPU time, not wall time: waiting for the database is not what the worker pays for.
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    for n in range(args.count):
        transition(n)
    profile.disable()
    if args.save:
        profile.dump_stats(args.save)
    stats = pstats.Stats(profile).strip_dirs()
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)


def count_instructions(args) -> None:
    """Run transitions and floor calls again, each under callgrind, and print the instructions
    per call of each; raises SystemExit without valgrind or when a run fails."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--instructions needs valgrind (Debian: apt install valgrind)")
    per_call = {}
    for step in ("floor", "transition"):
        # The measured calls run inside functools.reduce, a C function callgrind can switch on.
        command = [
            valgrind,
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            "--collect-atstart=no",
            "--toggle-collect=functools_reduce",
            sys.executable,
            __file__,
            f"--backend={args.backend}",
            f"--size={args.size}",
            f"--count={args.count}",
            f"--only={step}",
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        run = subprocess.run(command, capture_output=True, text=True, env=env)
        found = re.search(r"Collected : (\d+)", run.stderr)
        if run.returncode != 0 or found is None:
            raise SystemExit(f"the {step} run failed:\n{run.stderr[-2000:]}")
        per_call[step] = int(found.group(1)) / args.count
    print(
        f"{args.backend} {args.size}: transition {per_call['transition'] / 1e6:.3f}M "
        f"instructions, floor {per_call['floor'] / 1e6:.3f}M per call; "
        f"floor ÷ transition {per_call['floor'] / per_call['transition']:.3f}"
    )


if __name__ == "__main__":
    main()
