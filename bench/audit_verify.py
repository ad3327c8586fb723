"""``changeflow audit verify`` against its floor: raw ``hashlib.sha256`` over the same bytes.

    .venv/bin/python bench/audit_verify.py --backend postgres --size 1m

The floor hashes, in memory, exactly the bytes each entry's hash covers (previous hash plus
canonical JSON), prepared beforehand; verify has to read the entries from the database and
rebuild those bytes as well. A second floor, "read and hash", streams the stored columns and
hashes their concatenation: what any verifier pays for the database alone.
Verify and the raw floor each run ``--repeat`` times (3 unless told), alternating, and the
ratio is taken between their medians: on a shared two-core machine one run of verify moved
between 0.24 and 0.33 of the floor within an hour (docs/BENCHMARKS.md), so a single run says
little. The hypervisor's stolen CPU time during the verify runs is recorded too.
Writes bench/results/audit_verify_<backend>_<size>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time

from common import SIZES, database_url, machine, stolen_seconds, write_result


def run(backend: str, size: str, limit: int, repeat: int = 3) -> dict:
    """Time verify_all and the raw SHA-256 floor ``repeat`` times each, and the read-and-hash
    floor once; raises SystemExit when the database does not verify."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from models import HistoryEntry
    from web.db import make_engine
    from workflow.history import entry_bytes, verify_all

    url = database_url(backend, size)
    engine = make_engine(url)
    with Session(engine) as session:
        blobs = []
        rows = session.execute(
            select(HistoryEntry).order_by(HistoryEntry.id).limit(limit)
        ).scalars()
        for entry in rows:
            blobs.append(entry_bytes(entry.prev_hash, entry))
        session.expunge_all()
    sha = hashlib.sha256
    verify_rates, raw_rates, stolen = [], [], 0.0
    for _ in range(repeat):
        with Session(engine) as session:
            stolen_before, began = stolen_seconds(), time.perf_counter()
            requests, entries, problem = verify_all(session)
            verify_seconds = time.perf_counter() - began
            stolen += stolen_seconds() - stolen_before
        if problem is not None:
            raise SystemExit(f"the benchmark database does not verify: {problem}")
        verify_rates.append(entries / verify_seconds)
        began = time.perf_counter()
        for blob in blobs:
            sha(blob).hexdigest()
        raw_rates.append(len(blobs) / (time.perf_counter() - began))
    verify_rate, raw_rate = statistics.median(verify_rates), statistics.median(raw_rates)

    columns = [c for c in HistoryEntry.__table__.columns if c.name != "id"]
    with engine.connect() as conn:
        began = time.perf_counter()
        read = 0
        result = conn.execution_options(yield_per=5000).execute(
            select(*columns).order_by(HistoryEntry.id)
        )
        for row in result:
            sha("".join(map(str, row)).encode()).hexdigest()
            read += 1
        read_seconds = time.perf_counter() - began
    engine.dispose()
    result = {
        "backend": backend,
        "size": size,
        "requests": requests,
        "entries": entries,
        "runs": repeat,
        "verify_seconds": round(entries / verify_rate, 2),
        "verify_entries_per_second": round(verify_rate),
        "verify_runs_entries_per_second": [round(r) for r in verify_rates],
        "raw_runs_entries_per_second": [round(r) for r in raw_rates],
        "verify_over_raw_runs": [
            round(v / r, 3) for v, r in zip(verify_rates, raw_rates, strict=True)
        ],
        "stolen_cpu_seconds_during_verify": round(stolen, 2),
        "raw_sha256_entries_per_second": round(raw_rate),
        "raw_sample": len(blobs),
        "read_and_hash_entries_per_second": round(read / read_seconds),
        "verify_over_raw": round(verify_rate / raw_rate, 3),
        "verify_over_read_and_hash": round(verify_rate / (read / read_seconds), 3),
        "machine": machine(),
    }
    print(
        f"  verify {verify_rate:,.0f} entries/s (median of {repeat}, {entries:,} entries) · raw "
        f"sha256 {raw_rate:,.0f}/s · read+hash {read / read_seconds:,.0f}/s · verify/raw "
        f"{result['verify_over_raw']:.2f} (runs: "
        f"{', '.join(f'{x:.2f}' for x in result['verify_over_raw_runs'])})",
        flush=True,
    )
    write_result(f"audit_verify_{backend}_{size}", result)
    return result


def main() -> None:
    """Measure audit verify on one generated database."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--size", choices=sorted(SIZES), default="10k")
    parser.add_argument("--raw-sample", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of verify and of the floor")
    args = parser.parse_args()
    print(f"audit verify: {args.backend} {args.size}", flush=True)
    run(args.backend, args.size, args.raw_sample, max(1, args.repeat))


if __name__ == "__main__":
    main()
