"""List and search p95 at two sizes, measured side by side in the same minutes.

    .venv/bin/python bench/list_growth.py --backend postgres --sizes 10k,1m [--samples 300]

http_bench.py measures each size's lists in its own run, minutes or hours apart, and on a shared
VM the p95 of the same query drifted by up to 2× between such runs. Here two gunicorn servers
(2 workers each), one per database, are up at once and one client alternates between them call
by call (small then large, then large then small), so both sizes see the same machine. Each
scope and query gets a warm-up of 10 calls per size first. The ratio is p95 at the larger size
÷ p95 at the smaller; the target is ≤ 1.5.
Writes bench/results/list_growth_<backend>_<small>_<large>.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import time
from urllib.parse import urlencode

from common import database_url, machine, percentile, tokens_path, write_result
from http_bench import LIST_QUERIES, PORT, Server, call


def timed(path: str, token: str, conn) -> tuple[float, dict]:
    """One GET; returns (seconds, body); raises RuntimeError on a status other than 200."""
    began = time.perf_counter()
    status, data = call("GET", path, token, None, conn)
    elapsed = time.perf_counter() - began
    if status != 200:
        raise RuntimeError(f"{path}: HTTP {status} {data}")
    return elapsed, data


def run(backend: str, small: str, large: str, samples: int) -> dict:
    """Alternate every list query between the two sizes; returns and stores the results."""
    sizes = (small, large)
    urls = {size: database_url(backend, size) for size in sizes}
    tokens = {size: json.loads(tokens_path(urls[size]).read_text()) for size in sizes}
    ports = {small: PORT, large: PORT + 1}
    result: dict = {"backend": backend, "sizes": list(sizes), "samples": samples, "lists": {}}
    result["requests"] = {size: tokens[size]["requests"] for size in sizes}
    with Server(urls[small], port=ports[small]), Server(urls[large], port=ports[large]):
        conns = {s: http.client.HTTPConnection("127.0.0.1", ports[s], timeout=120) for s in sizes}
        for who in ("bench_it", "bench_vendor", "bench_dept"):
            for name, query in LIST_QUERIES.items():
                path = f"/api/v1/requests?{urlencode(query)}"
                times: dict = {size: [] for size in sizes}
                totals = {}
                for n in range(samples + 10):
                    for size in sizes if n % 2 == 0 else sizes[::-1]:
                        elapsed, data = timed(path, tokens[size][who], conns[size])
                        totals[size] = data["total"]
                        if n >= 10:
                            times[size].append(elapsed)
                row = {
                    size: {
                        "p50_ms": round(percentile(times[size], 50) * 1000, 2),
                        "p95_ms": round(percentile(times[size], 95) * 1000, 2),
                        "total": totals[size],
                    }
                    for size in sizes
                }
                row["p95_ratio"] = round(row[large]["p95_ms"] / row[small]["p95_ms"], 3)
                result["lists"][f"{who}:{name}"] = row
                print(
                    f"  {who + ':' + name:<28} p95 {row[small]['p95_ms']:>7.2f} ms at {small}"
                    f" · {row[large]['p95_ms']:>7.2f} ms at {large} · ratio {row['p95_ratio']:.2f}",
                    flush=True,
                )
        for conn in conns.values():
            conn.close()
    result["machine"] = machine()
    write_result(f"list_growth_{backend}_{small}_{large}", result)
    return result


def main() -> None:
    """Measure list growth between two generated databases."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--sizes", default="10k,1m", help="two sizes, smaller first")
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    small, large = args.sizes.split(",")
    print(f"list growth: {args.backend} {small} → {large}", flush=True)
    run(args.backend, small, large, args.samples)


if __name__ == "__main__":
    main()
