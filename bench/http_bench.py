"""The application served by gunicorn (2 workers), driven over HTTP like an integration would.

For one generated database (bench/generate.py) it measures:

* transitions per second through ``POST /api/v1/requests/{id}/events/{event}`` with 1, 8 and 32
  concurrent clients (incidents going in_progress ⇄ waiting_hospital, the vendor's bearer
  token), with p50/p95/p99 latency;
* the floor: the same server and client against ``POST /bench/floor/{id}`` (bench/wsgi.py: one
  versioned UPDATE and one INSERT in one transaction), so engine ÷ floor is the engine's cost;
  the two run in alternating slices of the same minutes (``SLICES``), after a warm-up each;
* request list and search p95 for three scopes (IT, vendor, department) and four queries;
* resident memory of each worker afterwards.

    .venv/bin/python bench/http_bench.py --backend postgres --size 1m [--seconds 20]

Writes bench/results/http_<backend>_<size>.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

from common import (
    DATA,
    ROOT,
    SIZES,
    database_url,
    machine,
    percentile,
    restore_generated,
    stolen_seconds,
    tokens_path,
    write_result,
)

PORT = int(os.environ.get("BENCH_PORT", "5099"))
WORKERS = 2
# One thread per worker (2026-12-05, 10k, 8 clients, engine ÷ floor): SQLite 0.52 against 0.38
# with two, PostgreSQL 0.57 against 0.56 (p95 21 against 28 ms). A second thread competes for
# its worker's GIL while the first holds the database's write lock. BENCHMARKS.md has more.
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
CLIENTS = (1, 8, 32)


class Server:
    """gunicorn serving bench/wsgi.py on one benchmark database."""

    def __init__(self, url: str, workers: int = WORKERS, threads: int = THREADS, port: int = PORT):
        self.url, self.workers, self.threads, self.port = url, workers, threads, port
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        env = {
            **os.environ,
            "DATABASE_URL": self.url,
            "CHANGEFLOW_INSTANCE": str(DATA / "instance"),
            "CHANGEFLOW_SECRET_KEY": "bench",
        }
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "--workers", str(self.workers),
                "--threads", str(self.threads),
                "--bind", f"127.0.0.1:{self.port}",
                "--chdir", str(ROOT / "bench"),
                "--log-level", "warning",
                "--keep-alive", "30",
                "wsgi:app",
            ],
            env=env,
        )  # fmt: skip
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                status, _ = call("GET", "/api/v1/openapi.json", port=self.port)
                if status == 200 and len(self.worker_pids()) == self.workers:
                    return self
            except OSError:
                pass
            time.sleep(0.3)
        self.__exit__()
        raise RuntimeError("gunicorn did not come up within 60 s")

    def worker_pids(self) -> list[int]:
        """The gunicorn workers (children of the master)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return sorted(pids)

    def memory(self) -> list[dict]:
        """Resident and peak resident memory of each worker, in MiB."""
        rows = []
        for pid in self.worker_pids():
            status = dict(
                line.split(":", 1)
                for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                if ":" in line
            )
            rows.append(
                {
                    "pid": pid,
                    "rss_mib": round(int(status["VmRSS"].split()[0]) / 1024, 1),
                    "peak_rss_mib": round(int(status["VmHWM"].split()[0]) / 1024, 1),
                }
            )
        return rows

    def cpu_seconds(self) -> dict:
        """CPU seconds used so far by the workers, PostgreSQL's processes and this client, and
        the seconds the hypervisor stole from all cores (a shared VM runs slower by that)."""
        tick = os.sysconf("SC_CLK_TCK")
        used = {"workers": 0.0, "postgres": 0.0, "client": 0.0, "stolen": stolen_seconds()}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                raw = stat.read_text()
            except OSError:
                continue
            name = raw.split("(", 1)[1].rsplit(")", 1)[0]
            fields = raw.rsplit(")", 1)[1].split()
            seconds = (int(fields[11]) + int(fields[12])) / tick
            if int(fields[1]) == self.process.pid:
                used["workers"] += seconds
            elif name.startswith("postgres"):
                used["postgres"] += seconds
            elif int(stat.parent.name) == os.getpid():
                used["client"] += seconds
        return used

    def __exit__(self, *_exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def call(method: str, path: str, token: str | None = None, body=None, conn=None, port=PORT):
    """One HTTP call; returns (status, parsed JSON or None)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    raw = response.read()
    if own:
        conn.close()
    try:
        return response.status, json.loads(raw) if raw else None
    except ValueError:
        return response.status, None


# -- transitions -------------------------------------------------------------------------------
def engine_targets(token: str, limit: int = 4000) -> list[list]:
    """Incidents the vendor can move in_progress ⇄ waiting_hospital: [id, version, state]."""
    found = []
    for state in ("in_progress", "waiting_hospital"):
        page = 1
        while len(found) < limit:
            query = urlencode({"kind": "incident", "state": state, "per_page": 100, "page": page})
            status, data = call("GET", f"/api/v1/requests?{query}", token)
            if status != 200 or not data["items"]:
                break
            found += [[r["id"], r["version"], r["state"]] for r in data["items"]]
            page += 1
    return found


def engine_step(target: list, token: str, conn) -> int:
    """Fire the next event of the cycle on one incident; returns the HTTP status."""
    request_id, version, state = target
    event = "wait_for_hospital" if state == "in_progress" else "resume"
    body = {"version": version, "fields": {}, "comment": "等待院方确认 / benchmark"}
    status, data = call("POST", f"/api/v1/requests/{request_id}/events/{event}", token, body, conn)
    if status == 200:
        target[1], target[2] = data["version"], data["state"]
    return status


def floor_targets(count: int) -> list[list]:
    """Floor rows with their current version, read straight from the database."""
    return [[i, None, None] for i in range(1, count + 1)]


def floor_step(target: list, _token: str, conn) -> int:
    """One floor transition; learns the row's version from the first 409."""
    item_id, version, _ = target
    status, data = call("POST", f"/bench/floor/{item_id}", None, {"version": version}, conn)
    if status == 200:
        target[1] = data["version"]
    elif status == 409:
        target[1] = data.get("current")
    return status


def drive(step, targets: list, token: str, clients: int, seconds: float) -> tuple[list, dict]:
    """``clients`` threads, each with its own keep-alive connection and share of the targets,
    stepping for ``seconds``; returns the latencies of the 200s and the count of each status."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    statuses: list[dict] = [{} for _ in range(clients)]
    stop_at = time.perf_counter() + seconds

    def client(n: int) -> None:
        mine = targets[n::clients]
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
        i = 0
        while True:
            began = time.perf_counter()
            if began >= stop_at:
                break
            status = step(mine[i % len(mine)], token, conn)
            ended = time.perf_counter()
            i += 1
            statuses[n][status] = statuses[n].get(status, 0) + 1
            if status == 200:
                latencies[n].append(ended - began)
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counted: dict = {}
    for per in statuses:
        for status, n in per.items():
            counted[str(status)] = counted.get(str(status), 0) + n
    return [x for per in latencies for x in per], counted


def summary(clients: int, seconds: float, latencies: list, statuses: dict, cpu: dict) -> dict:
    """Rate, latency percentiles, statuses and CPU per 200 of one side's slices together."""
    result = {
        "clients": clients,
        "seconds": seconds,
        "ok": len(latencies),
        "per_second": round(len(latencies) / seconds, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p95_ms": round(percentile(latencies, 95) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "statuses": statuses,
    }
    if latencies:
        result["cpu_ms_per_transition"] = {
            party: round(used / len(latencies) * 1000, 2) for party, used in cpu.items()
        }
    return result


# The engine and the floor run in alternating slices (engine, floor, floor, engine, …), so that
# both see the same minutes of a shared machine: run one after the other, a drift in the
# machine's speed moved the ratio by up to ±25 %.
SLICES = 6


def measured_pair(server: Server, engine: tuple, floor: tuple, clients: int, seconds: float):
    """The engine's and the floor's summaries over ``seconds`` each, in alternating slices after
    a warm-up of each; ``engine`` and ``floor`` are (step, targets, token)."""
    sides = {"engine": engine, "floor": floor}
    for step, targets, token in sides.values():
        drive(step, targets, token, clients, 2)
    gathered = {name: ([], {}, {}) for name in sides}
    for n in range(SLICES):
        order = ["engine", "floor"] if n % 2 == 0 else ["floor", "engine"]
        for name in order:
            step, targets, token = sides[name]
            before = server.cpu_seconds()
            latencies, statuses = drive(step, targets, token, clients, seconds / SLICES)
            after = server.cpu_seconds()
            all_latencies, all_statuses, cpu = gathered[name]
            all_latencies.extend(latencies)
            for status, count in statuses.items():
                all_statuses[status] = all_statuses.get(status, 0) + count
            for party in after:
                cpu[party] = cpu.get(party, 0.0) + after[party] - before[party]
    return {name: summary(clients, seconds, *gathered[name]) for name in sides}


# -- lists and search --------------------------------------------------------------------------
LIST_QUERIES = {
    "list": {"per_page": 25},
    "filtered": {"kind": "incident", "state": "in_progress", "per_page": 25},
    "search_common": {"q": "住院结算", "per_page": 25},
    "search_rare": {"q": "血透机", "per_page": 25},  # 2 titles a department at every size
}


def list_latencies(tokens: dict, samples: int) -> dict:
    """p50/p95 of each list query for each scope, one client, keep-alive."""
    out = {}
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
    for who in ("bench_it", "bench_vendor", "bench_dept"):
        for name, query in LIST_QUERIES.items():
            path = f"/api/v1/requests?{urlencode(query)}"
            times = []
            total = None
            for n in range(samples + 10):
                began = time.perf_counter()
                status, data = call("GET", path, tokens[who], None, conn)
                elapsed = time.perf_counter() - began
                if status != 200:
                    raise RuntimeError(f"{path} as {who}: HTTP {status} {data}")
                if n >= 10:
                    times.append(elapsed)
                total = data["total"]
            out[f"{who}:{name}"] = {
                "p50_ms": round(percentile(times, 50) * 1000, 2),
                "p95_ms": round(percentile(times, 95) * 1000, 2),
                "total": total,
            }
    conn.close()
    return out


def run(backend: str, size: str, seconds: float, samples: int) -> dict:
    """Every HTTP measurement on one database; returns and stores the results."""
    url = database_url(backend, size)
    tokens = json.loads(tokens_path(url).read_text())
    result: dict = {"backend": backend, "size": size, "requests": tokens["requests"]}
    result["history_entries"] = tokens["history_entries"]
    result["server"] = {"workers": WORKERS, "threads": THREADS}
    result["restored_to_generated"] = restore_generated(url)
    if not result["restored_to_generated"]:
        print(
            "  warning: no copy of the generated database is kept; histories include earlier "
            "runs' transitions (run generate.py again to measure from a fresh state)",
            flush=True,
        )
    if backend == "postgres":
        # Flush what the generator (or an earlier run) left dirty, so no background checkpoint
        # writes millions of pages while we measure.
        import psycopg

        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    with Server(url) as server:
        result["memory_idle"] = server.memory()
        targets = engine_targets(tokens["bench_vendor"])
        result["engine_targets"] = len(targets)
        floor = floor_targets(len(targets))
        result["transitions"] = {}
        for clients in CLIENTS:
            pair = measured_pair(
                server,
                (engine_step, targets, tokens["bench_vendor"]),
                (floor_step, floor, None),
                clients,
                seconds,
            )
            engine, bare = pair["engine"], pair["floor"]
            ratio = engine["per_second"] / bare["per_second"] if bare["per_second"] else 0
            result["transitions"][str(clients)] = {
                "engine": engine,
                "floor": bare,
                "engine_over_floor": round(ratio, 3),
            }
            cpu = (engine.get("cpu_ms_per_transition", {}), bare.get("cpu_ms_per_transition", {}))
            print(f"     worker CPU ms per transition: engine {cpu[0]} · floor {cpu[1]}")
            print(
                f"  {clients:>2} clients: engine {engine['per_second']:>7.1f}/s "
                f"p95 {engine['p95_ms']:>7.2f} ms · floor {bare['per_second']:>7.1f}/s "
                f"p95 {bare['p95_ms']:>6.2f} ms · ratio {ratio:.2f}",
                flush=True,
            )
        result["lists"] = list_latencies(tokens, samples)
        for name, row in result["lists"].items():
            print(f"  {name:<28} p50 {row['p50_ms']:>7.2f} ms  p95 {row['p95_ms']:>7.2f} ms")
        result["memory_after"] = server.memory()
        print(f"  worker memory: {result['memory_after']}", flush=True)
    result["machine"] = machine()
    write_result(f"http_{backend}_{size}", result)
    return result


def main() -> None:
    """Measure one generated database over HTTP."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--size", choices=sorted(SIZES), default="10k")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    print(f"HTTP benchmark: {args.backend} {args.size}", flush=True)
    run(args.backend, args.size, args.seconds, args.samples)


if __name__ == "__main__":
    main()
