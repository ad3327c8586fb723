"""In-process costs that could grow with the data: the quota balance and decision against the
size of the period's ledger, and ``available_events`` against the length of a request's history.

    .venv/bin/python bench/engine_micro.py --backend postgres

Each figure is the median of repeated calls, in microseconds, with its ratio to the smallest
size (1.0 = flat). Writes bench/results/engine_micro_<backend>.json.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta
from decimal import Decimal

from common import DATA, ROOT, database_url, recreate_database, write_result

LEDGER_SIZES = (10, 100, 1_000, 10_000, 100_000)
HISTORY_SIZES = (10, 100, 1_000, 10_000)
REPEAT = 200


def timed(call, repeat: int = REPEAT) -> float:
    """Median microseconds of ``call()`` over ``repeat`` runs (after two warm-ups)."""
    call()
    call()
    runs = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        runs.append(time.perf_counter() - began)
    return round(statistics.median(runs) * 1e6, 1)


def run(backend: str) -> dict:
    """Fill one database step by step and time the calls at each size."""
    from sqlalchemy import insert, select, update

    from migrations import upgrade
    from models import HistoryEntry, QuotaEntry, Request, User, utcnow
    from web import create_app
    from workflow import quota
    from workflow.demo import load_demo
    from workflow.engine import available_events
    from workflow.localtime import hospital_today

    url = database_url(backend, "micro")
    recreate_database(url)
    upgrade(url, "head")
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    results: dict = {"backend": backend, "ledger": [], "history": []}
    with app.app_context():
        maker = app.extensions["changeflow.sessionmaker"]
        with maker() as session, session.begin():
            load_demo(
                session,
                app.extensions["changeflow.catalog"],
                ROOT / "definitions" / "policies",
                DATA / "attachments",
            )
        session = maker()
        users = {u.username: u for u in session.scalars(select(User))}
        estimated = session.scalar(select(Request).where(Request.title == "心内科随访统计报表"))
        contract = estimated.contract
        now = utcnow()
        period = quota.locked_period(session, contract, hospital_today(now))
        session.commit()

        # -- quota: balance and decision against ledger size --------------------------------
        written = 0
        for size in LEDGER_SIZES:
            rows = []
            for n in range(written, size):
                # Reserve and release in turn: the balance stays inside the pool at any size.
                kind = "reserve" if n % 2 == 0 else "release"
                rows.append(
                    {
                        "period_id": period.id,
                        "request_id": estimated.id,
                        "kind": kind,
                        "days": Decimal("0.5"),
                        "actor_id": users["vendor_manager"].id,
                        "actor_name": "vendor_manager",
                        "at": now - timedelta(minutes=n),
                        "reason": "bench",
                    }
                )
            if rows:
                session.execute(insert(QuotaEntry), rows)
                session.commit()
            written = size
            row = {
                "entries": size,
                "overview_us": timed(
                    lambda: quota.quota_overview(session, contract, hospital_today(now))
                ),
                "decide_us": timed(
                    lambda: (quota.decide(session, estimated, now), session.rollback())
                ),
                "available_events_us": timed(
                    lambda: available_events(session, estimated, users["it_signer"])
                ),
            }
            session.rollback()
            results["ledger"].append(row)
            print(f"  ledger {size:>7,}: {row}", flush=True)

        # -- available_events against the request's history length ---------------------------
        target = session.scalar(select(Request).where(Request.kind == "schema_change"))
        first = session.scalar(
            select(HistoryEntry).where(HistoryEntry.request_id == target.id, HistoryEntry.seq == 1)
        )
        have = target.version
        for size in HISTORY_SIZES:
            extra = [
                {
                    "request_id": target.id,
                    "seq": seq,
                    "at": now,
                    "actor_id": first.actor_id,
                    "actor_name": first.actor_name,
                    "event": "revise" if seq % 2 else "comment",
                    "from_state": target.state,
                    "to_state": target.state,
                    "fields": {},
                    "comment": "",
                    "definition_hash": first.definition_hash,
                    "prev_hash": first.prev_hash,
                    "entry_hash": first.entry_hash,
                }
                for seq in range(have + 1, size + 1)
            ]
            if extra:
                session.execute(insert(HistoryEntry), extra)
                session.execute(update(Request).where(Request.id == target.id).values(version=size))
                session.commit()
                session.expire_all()
                have = size
            row = {
                "entries": size,
                "available_events_us": timed(
                    lambda: available_events(session, target, users["it_dba"])
                ),
            }
            session.rollback()
            results["history"].append(row)
            print(f"  history {size:>6,}: {row}", flush=True)
        session.close()
    for table in ("ledger", "history"):
        base = results[table][0]
        for row in results[table]:
            for key, value in list(row.items()):
                if key.endswith("_us"):
                    row[key.replace("_us", "_ratio")] = round(value / base[key], 2)
    write_result(f"engine_micro_{backend}", results)
    return results


def main() -> None:
    """Run the micro benchmarks on one backend."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    print(f"engine micro benchmarks: {args.backend}", flush=True)
    run(args.backend)


if __name__ == "__main__":
    main()
