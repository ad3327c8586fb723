"""Fill a benchmark database with a busy hospital: requests in realistic state mixes, with
hash-chained history that ``changeflow audit verify`` accepts.

    .venv/bin/python bench/generate.py --backend postgres --size 1m
    .venv/bin/python bench/generate.py --backend sqlite --size 100k

The schema comes from the Alembic migrations and the base data (departments, vendors, the five
seed contracts, systems, users) from the demo loader plus 30 more departments, all through the
ORM. The requests themselves are generated in bulk: each is walked through its real definition
(random events from its current state, ~10 history entries on average) and written with COPY on
PostgreSQL, batched executemany on SQLite. Generated requests carry no quota ledger entries,
attachments or signatures: guards are not run, only the state graph is followed.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import datetime, timedelta

from common import (
    DATA,
    ROOT,
    SIZES,
    backend_of,
    database_url,
    keep_generated,
    recreate_database,
    tokens_path,
)

# Share of each workflow among the requests, like a hospital's year: faults dominate.
KIND_MIX = {"incident": 0.45, "requirement": 0.35, "upgrade": 0.12, "schema_change": 0.08}
EXTRA_DEPARTMENTS = 30
BENCH_USERS = {
    # username: (roles, department, vendor)
    "bench_it": (["it_staff"], None, None),
    "bench_vendor": (["vendor_engineer"], None, "vendor_b"),
    "bench_dept": (["dept_user"], "cardiology", None),
    "bench_auditor": (["auditor"], None, None),
}
MODULES = ["门诊挂号", "住院结算", "电子病历", "检验报告", "医保接口", "随访表单", "统计报表"]
PROBLEMS = ["无法打开", "打印异常", "数据不一致", "响应缓慢", "新增字段", "接口超时", "报表错误"]
WORDS = ["心内科", "检验科", "急诊", "药房", "放射科", "体检中心", "手术室", "病案室"]
# Contracts without an SLA table take any severity (check_sla_level lets them through).
SEVERITIES = ["1", "2", "3", "4", "5"]
# The dialysis machine (血透机) is named in exactly RARE_PER_DEPARTMENT titles of every
# department, spread over the whole time span, at every size: a needle whose matches do not grow
# with the haystack, so a rare search compares the same page at 10k and at 1M and any growth is
# the cost of finding it. (Until 2026-12-05 one title in a thousand named it: a department then
# found nothing at 10k and a full page at 1M, which measured rendering a page, not searching.)
RARE_WORD, RARE_PER_DEPARTMENT = "血透机", 2
FINISHED_AFTER = timedelta(days=60)
# Every generated schema change carries this script, so one real analysis stands for all.
CHANGE_SQL = "ALTER TABLE his_visit ADD COLUMN remark VARCHAR(200) NULL COMMENT '备注';\n"
ROLLBACK_SQL = "ALTER TABLE his_visit DROP COLUMN remark;\n"


def base_data(url: str) -> dict:
    """Schema, demo hospital, more departments and the benchmark users; returns ids and tokens."""
    from sqlalchemy import select

    from migrations import upgrade
    from models import Contract, Department, System, User
    from web import create_app
    from web.cli import transaction
    from workflow.accounts import create_user, issue_token
    from workflow.demo import load_demo
    from workflow.sla import level_keys

    upgrade(url, "head")
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    with app.app_context(), transaction() as session:
        catalog = app.extensions["changeflow.catalog"]
        load_demo(session, catalog, ROOT / "definitions" / "policies", DATA / "attachments")
        for n in range(1, EXTRA_DEPARTMENTS + 1):
            code = f"ward_{n:02d}"
            session.add(Department(code=code, name=f"病区{n:02d}", name_en=f"Ward {n:02d}"))
            session.flush()
            create_user(session, f"nurse_{n:02d}", None, ["dept_user"], department=code)
        tokens = {}
        for username, (roles, department, vendor) in BENCH_USERS.items():
            user = create_user(session, username, None, roles, department=department, vendor=vendor)
            tokens[username] = issue_token(session, user, "benchmark")
        versions = {}
        for key, definition in catalog.current.items():
            versions[key] = (catalog.store(session, definition).id, definition)
        session.flush()
        users = {u.username: u for u in session.scalars(select(User))}
        role_users: dict[str, list] = {}
        for user in users.values():
            for assignment in user.roles:
                role_users.setdefault(assignment.role, []).append(user)
        contracts = list(session.scalars(select(Contract).order_by(Contract.id)))
        systems = {s.contract_id: s.id for s in session.scalars(select(System))}
        departments = list(session.scalars(select(Department.id)))
        dept_users = {
            a.department_id: u
            for u in users.values()
            for a in u.roles
            if a.role == "dept_user" and a.department_id
        }
        return {
            "tokens": tokens,
            "versions": versions,
            "role_users": {r: [(u.id, u.username) for u in us] for r, us in role_users.items()},
            "contracts": [(c.id, c.vendor_id) for c in contracts],
            # An incident's severity is a level of its contract's SLA table, as check_sla_level
            # demands on creation: only then do its clocks run and every transition show them.
            "levels": {c.id: level_keys(c.policy) for c in contracts},
            "systems": systems,
            "departments": departments,
            "dept_users": {d: (u.id, u.username) for d, u in dept_users.items()},
        }


def create_fields(kind: str, rng: random.Random, n: int, levels: list[str]) -> dict:
    """Valid fields of a new request of ``kind`` (``levels``: its contract's SLA levels)."""
    if kind == "incident":
        return {
            "severity": rng.choice(levels or SEVERITIES),
            "location": f"{rng.choice(WORDS)} {rng.randint(1, 30)} 号工作站",
            "reported_via": rng.choice(["phone", "wechat", "system", "onsite"]),
        }
    if kind == "requirement":
        return {
            "req_type": rng.choice(["bug", "new_feature", "report", "interface"]),
            "module": rng.choice(MODULES),
        }
    if kind == "upgrade":
        return {"to_version": f"8.{n % 9}.{n % 7}", "impact": "门诊、住院模块"}
    return {
        "database_name": "his",
        "dialect": "mysql",
        "change_sql": CHANGE_SQL,
        "rollback_sql": ROLLBACK_SQL,
        "reason": "门诊增加备注",
    }


class Walker:
    """Random walks through a definition's state graph.

    An open request takes ``steps`` random events, staying out of final states. A finished one
    (most of a three-year history) then takes the shortest way on to ``closed``, so the mix of
    states looks like a hospital's: mostly closed, the recent ones spread over the workflow.
    """

    def __init__(self, definition):
        self.definition = definition
        self.finals = {s for s, v in definition.states.items() if v.get("final")}
        self.moves = {
            state: [
                (e, to) for e in definition.events_from(state) for to in e.possible_targets(state)
            ]
            for state in definition.states
        }
        goal = "closed" if "closed" in definition.states else next(iter(self.finals))
        self.distance = {goal: 0}
        frontier = [goal]
        while frontier:  # breadth-first over the reversed graph
            later = []
            for state, moves in self.moves.items():
                if state not in self.distance and any(to in frontier for _, to in moves):
                    self.distance[state] = self.distance[frontier[0]] + 1
                    later.append(state)
            frontier = later

    def walk(self, rng: random.Random, steps: int, finish: bool) -> list[tuple]:
        """[(event, from, to)]: ``steps`` events from the initial state, then on to closed."""
        state, path = self.definition.initial, []
        for _ in range(steps):
            staying = [m for m in self.moves.get(state, []) if m[1] not in self.finals]
            if not staying:
                break
            event, to = rng.choice(staying)
            path.append((event, state, to))
            state = to
        while finish and state not in self.finals:
            here = self.distance.get(state, 99)
            closer = [m for m in self.moves[state] if self.distance.get(m[1], 99) < here]
            ends = [m for m in self.moves[state] if m[1] in self.finals and m[1] != "closed"]
            if ends and rng.random() < 0.08:  # some are cancelled, rejected, rolled back …
                closer = ends
            event, to = rng.choice(closer or self.moves[state])
            path.append((event, state, to))
            state = to
        return path


def needle_departments(count: int, departments: list[int]) -> dict[int, int]:
    """Which of ``count`` requests name the rare word, and for which department: evenly spaced,
    RARE_PER_DEPARTMENT for each department (fewer only when there are fewer requests)."""
    total = min(count, RARE_PER_DEPARTMENT * len(departments))
    spaced = ((j * count + count // 2) // total for j in range(total))
    return {n: departments[j % len(departments)] for j, n in enumerate(spaced)}


def generate_rows(base: dict, count: int, first_id: int, seed: int, now: datetime):
    """Yield (request row, [history rows], revision row or None) for ``count`` requests."""
    import hashlib

    from workflow.canonical import canonical_json
    from workflow.history import GENESIS, format_time

    rng = random.Random(seed)
    walkers = {k: Walker(d) for k, (_, d) in base["versions"].items()}
    kinds, weights = zip(*KIND_MIX.items(), strict=True)
    role_users = base["role_users"]
    contracts, departments = base["contracts"], base["departments"]
    span = timedelta(days=3 * 365).total_seconds()
    needles = needle_departments(count, departments)
    for n in range(count):
        request_id = first_id + n
        kind = rng.choices(kinds, weights)[0]
        version_id, definition = base["versions"][kind]
        contract_id, _vendor = rng.choice(contracts)
        department_id = rng.choice(departments)
        needle = needles.get(n)
        if needle is not None:
            department_id = needle
        if kind in ("incident", "requirement"):
            submitter = base["dept_users"].get(department_id) or rng.choice(role_users["it_staff"])
        else:
            submitter = rng.choice(role_users["vendor_engineer"])
        fields = create_fields(kind, rng, request_id, base["levels"][contract_id])
        title = f"{rng.choice(WORDS)}{rng.choice(MODULES)}{rng.choice(PROBLEMS)} 第{request_id}号"
        if needle is not None:
            title = f"{RARE_WORD}{title}"
        # Ids follow creation time, as they do in production (lists sort by id).
        created = now - timedelta(seconds=span * (1 - (n + rng.random()) / count))
        # Anything older than two months is finished; recent requests are spread over the states.
        walk = walkers[kind].walk(rng, rng.randint(1, 11), finish=now - created > FINISHED_AFTER)
        at = created
        entries = []
        create_payload = {
            "title": title,
            "description": "",
            "contract_id": contract_id,
            "system_id": base["systems"].get(contract_id),
            "department_id": department_id,
            "data": fields,
        }
        steps = [("create", None, definition.initial, submitter, create_payload, "")]
        assignee = None
        for event, source, target in walk:
            actor = rng.choice(role_users.get(rng.choice(event.roles)) or role_users["it_staff"])
            if event.name in ("acknowledge", "triage", "estimate") and assignee is None:
                assignee = actor
            comment = f"处理说明 {len(steps)}" if event.comment_required else ""
            steps.append((event.name, source, target, actor, {}, comment))
        prev = GENESIS
        for seq, (event_name, source, target, actor, payload_fields, comment) in enumerate(
            steps, start=1
        ):
            at = at + timedelta(
                seconds=rng.randint(60, 3 * 86400), microseconds=rng.randint(0, 999999)
            )
            payload = {
                "request_id": request_id,
                "seq": seq,
                "at": format_time(at),
                "actor_id": actor[0],
                "actor": actor[1],
                "event": event_name,
                "from": source,
                "to": target,
                "fields": payload_fields,
                "comment": comment,
                "definition": definition.content_hash,
            }
            digest = hashlib.sha256(prev.encode("ascii") + canonical_json(payload)).hexdigest()
            entries.append(
                (
                    request_id,
                    seq,
                    at,
                    actor[0],
                    actor[1],
                    event_name,
                    source,
                    target,
                    canonical_json(payload_fields).decode(),  # as CanonicalJSON stores it
                    comment,
                    definition.content_hash,
                    prev,
                    digest,
                )
            )
            prev = digest
        request = (
            request_id,
            kind,
            version_id,
            title,
            "",
            steps[-1][2],
            len(steps),
            contract_id,
            base["systems"].get(contract_id),
            department_id,
            submitter[0],
            assignee[0] if assignee else None,
            json.dumps(fields, ensure_ascii=False),
            prev,
            entries[0][2],
            entries[-1][2],
        )
        yield request, entries, kind == "schema_change"


REQUEST_COLUMNS = (
    "id",
    "kind",
    "definition_version_id",
    "title",
    "description",
    "state",
    "version",
    "contract_id",
    "system_id",
    "department_id",
    "submitter_id",
    "assignee_id",
    "data",
    "head_hash",
    "created_at",
    "updated_at",
)
HISTORY_COLUMNS = (
    "request_id",
    "seq",
    "at",
    "actor_id",
    "actor_name",
    "event",
    "from_state",
    "to_state",
    "fields",
    "comment",
    "definition_hash",
    "prev_hash",
    "entry_hash",
)
REVISION_COLUMNS = (
    "request_id",
    "number",
    "reason",
    "database_name",
    "dialect",
    "change_sql",
    "rollback_sql",
    "change_sha256",
    "rollback_sha256",
    "risk",
    "analysis",
    "created_by_id",
    "created_at",
)


def revision_row(request_row: tuple) -> tuple:
    """Revision 1 of a generated schema change, analysed for real (same SQL shape each time)."""
    from workflow.ddl import analyse
    from workflow.schema_rules import sql_sha256

    data = json.loads(request_row[12])
    analysis = analyse(data["change_sql"], data["rollback_sql"], data["dialect"], {})
    return (
        request_row[0],
        1,
        "created",
        data["database_name"],
        data["dialect"],
        data["change_sql"],
        data["rollback_sql"],
        sql_sha256(data["change_sql"]),
        sql_sha256(data["rollback_sql"]),
        analysis.risk,
        json.dumps(analysis.as_data(), ensure_ascii=False),
        request_row[10],
        request_row[14],
    )


def floor_tables_sql(backend: str) -> list[str]:
    """The floor benchmark's own two tables: shaped like requests/history, never audited."""
    big = "INTEGER PRIMARY KEY" if backend == "sqlite" else "BIGSERIAL PRIMARY KEY"
    return [
        "CREATE TABLE bench_floor_items (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, "
        "updated_at TIMESTAMP NOT NULL)",
        f"CREATE TABLE bench_floor_log (id {big}, item_id INTEGER NOT NULL "
        "REFERENCES bench_floor_items (id), version INTEGER NOT NULL, at TIMESTAMP NOT NULL, "
        "payload TEXT NOT NULL, UNIQUE (item_id, version))",
    ]


class _PostgresWriter:
    """COPY in batches: requests first (history's foreign keys point at them), one transaction."""

    def __init__(self, url: str):
        import psycopg

        self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))

    def write(self, table: str, columns: tuple, rows: list) -> None:
        with (
            self.conn.cursor() as cur,
            cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def finish(self) -> None:
        self.conn.commit()
        self.conn.autocommit = True
        self.conn.execute("VACUUM (ANALYZE)")
        self.conn.close()


class _SqliteWriter:
    """executemany in batches inside one transaction, journal sync off while loading."""

    def __init__(self, url: str):
        import sqlite3

        self.conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("BEGIN")

    def write(self, table: str, columns: tuple, rows: list) -> None:
        marks = ", ".join("?" * len(columns))
        self.conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def finish(self) -> None:
        self.conn.execute("COMMIT")
        self.conn.execute("ANALYZE")
        self.conn.close()


def bulk_load(url: str, base: dict, count: int, seed: int, report_every: int) -> dict:
    """Write ``count`` generated requests with their history; returns counts and timings."""
    from sqlalchemy import create_engine, text

    now = datetime(2026, 11, 20, 8, 0, 0)
    engine = create_engine(url)
    with engine.begin() as conn:
        first_id = conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM requests")).scalar() + 1
        for statement in floor_tables_sql(backend_of(url)):
            conn.execute(text(statement))
        conn.execute(
            text("INSERT INTO bench_floor_items (id, version, updated_at) VALUES (:i, 1, :t)"),
            [{"i": i, "t": now} for i in range(1, 10_001)],
        )
    engine.dispose()
    started = time.perf_counter()
    template = None
    totals = {"requests": 0, "history_entries": 0, "schema_revisions": 0}

    def revision_for(request_row):
        nonlocal template
        if template is None:
            template = revision_row(request_row)
        return (request_row[0], *template[1:11], request_row[10], request_row[14])

    writer = _PostgresWriter(url) if backend_of(url) == "postgres" else _SqliteWriter(url)
    batch_requests, batch_entries, batch_revisions = [], [], []

    def flush():
        writer.write("requests", REQUEST_COLUMNS, batch_requests)
        writer.write("history_entries", HISTORY_COLUMNS, batch_entries)
        writer.write("schema_revisions", REVISION_COLUMNS, batch_revisions)
        totals["schema_revisions"] += len(batch_revisions)
        for batch in (batch_requests, batch_entries, batch_revisions):
            batch.clear()

    for request_row, entries, is_schema in generate_rows(base, count, first_id, seed, now):
        batch_requests.append(request_row)
        batch_entries.extend(entries)
        if is_schema:
            batch_revisions.append(revision_for(request_row))
        totals["requests"] += 1
        totals["history_entries"] += len(entries)
        if len(batch_requests) >= 20_000:
            flush()
        if totals["requests"] % report_every == 0:
            rate = totals["requests"] / (time.perf_counter() - started)
            print(
                f"  {totals['requests']:>9,} requests, {totals['history_entries']:>11,} "
                f"entries ({rate:,.0f} requests/s)",
                flush=True,
            )
    flush()
    writer.finish()
    totals["seconds"] = round(time.perf_counter() - started, 1)
    return totals


def main() -> None:
    """Generate one benchmark database."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--size", choices=sorted(SIZES), default="10k")
    parser.add_argument("--requests", type=int, help="override the size's request count")
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args()
    url = database_url(args.backend, args.size)
    count = args.requests or SIZES[args.size]
    print(f"generating {count:,} requests into {url}", flush=True)
    recreate_database(url)
    tokens_path(url).unlink(missing_ok=True)
    started = time.perf_counter()
    base = base_data(url)
    totals = bulk_load(url, base, count, args.seed, max(1000, count // 10))
    keep_generated(url)  # http_bench.py starts every run from this copy
    totals["total_seconds"] = round(time.perf_counter() - started, 1)
    tokens_path(url).write_text(json.dumps({"url": url, **base["tokens"], **totals}, indent=2))
    print(json.dumps(totals))


if __name__ == "__main__":
    main()
