"""``changeflow audit verify`` against its floor: raw ``hashlib.sha256`` over the same bytes.

    .venv/bin/python bench/audit_verify.py --backend postgres --size 1m

The floor hashes, in memory, exactly the bytes each entry's hash covers (previous hash plus
canonical JSON), prepared beforehand; verify has to read the entries from the database and
rebuild those bytes as well. A second floor, "read and hash", streams the stored columns and
hashes their concatenation: what any verifier pays for the database alone.
Writes bench/results/audit_verify_<backend>_<size>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import time

from common import SIZES, database_url, machine, write_result


def run(backend: str, size: str, limit: int) -> dict:
    """Time verify_all, the raw SHA-256 floor and the read-and-hash floor."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from models import HistoryEntry
    from web.db import make_engine
    from workflow.history import entry_bytes, verify_all

    url = database_url(backend, size)
    engine = make_engine(url)
    with Session(engine) as session:
        began = time.perf_counter()
        requests, entries, problem = verify_all(session)
        verify_seconds = time.perf_counter() - began
        if problem is not None:
            raise SystemExit(f"the benchmark database does not verify: {problem}")

        blobs = []
        rows = session.execute(
            select(HistoryEntry).order_by(HistoryEntry.id).limit(limit)
        ).scalars()
        for entry in rows:
            blobs.append(entry_bytes(entry.prev_hash, entry))
        session.expunge_all()
    sha = hashlib.sha256
    began = time.perf_counter()
    for blob in blobs:
        sha(blob).hexdigest()
    raw_seconds = time.perf_counter() - began
    raw_rate = len(blobs) / raw_seconds

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
    verify_rate = entries / verify_seconds
    result = {
        "backend": backend,
        "size": size,
        "requests": requests,
        "entries": entries,
        "verify_seconds": round(verify_seconds, 2),
        "verify_entries_per_second": round(verify_rate),
        "raw_sha256_entries_per_second": round(raw_rate),
        "raw_sample": len(blobs),
        "read_and_hash_entries_per_second": round(read / read_seconds),
        "verify_over_raw": round(verify_rate / raw_rate, 3),
        "verify_over_read_and_hash": round(verify_rate / (read / read_seconds), 3),
        "machine": machine(),
    }
    print(
        f"  verify {verify_rate:,.0f} entries/s ({entries:,} in {verify_seconds:.1f} s) · raw "
        f"sha256 {raw_rate:,.0f}/s · read+hash {read / read_seconds:,.0f}/s · verify/raw "
        f"{result['verify_over_raw']:.2f}",
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
    args = parser.parse_args()
    print(f"audit verify: {args.backend} {args.size}", flush=True)
    run(args.backend, args.size, args.raw_sample)


if __name__ == "__main__":
    main()
