"""Append-only, per-request hash chains, their verification and a checkpoint over all heads.

Each entry's hash is ``sha256(prev_hash_hex || canonical_json(entry))``; the first entry of a
request chains from 64 zeros. Editing, deleting or reordering any row breaks the chain at that
row, and ``requests.head_hash`` / ``requests.version`` catch a deleted last entry.
"""

from __future__ import annotations

import gc
import hashlib
import json
import multiprocessing
import os
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

# The escaper json.dumps itself uses with ensure_ascii=False (its C version when available).
from json.encoder import encode_basestring
from urllib.request import pathname2url

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from models import HistoryEntry, Request, as_naive_utc
from workflow.canonical import canonical_json

GENESIS = "0" * 64


def entry_payload(entry: HistoryEntry) -> dict:
    """The fields covered by an entry's hash (everything but its own id and hashes)."""
    return {
        "request_id": entry.request_id,
        "seq": entry.seq,
        "at": format_time(entry.at),
        "actor_id": entry.actor_id,
        "actor": entry.actor_name,
        "event": entry.event,
        "from": entry.from_state,
        "to": entry.to_state,
        "fields": entry.fields or {},
        "comment": entry.comment or "",
        "definition": entry.definition_hash,
    }


def format_time(at: datetime) -> str:
    """The hashed form of a timestamp: naive UTC ISO 8601 with microseconds."""
    return as_naive_utc(at).isoformat(timespec="microseconds")


def compute_hash(prev_hash: str, payload: dict) -> str:
    """SHA-256 hex over the previous hash and the canonical JSON of the payload."""
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_json(payload)).hexdigest()


def _time(at: datetime) -> str:
    # Stored timestamps are naive UTC already; only aware ones need format_time's conversion.
    return at.isoformat(timespec="microseconds") if at.tzinfo is None else format_time(at)


def _entry_text(
    prev_hash,
    actor,
    actor_id,
    at,
    comment,
    definition,
    event,
    fields,
    from_state,
    request_id,
    seq,
    to_state,
) -> str:
    """``prev_hash`` and the canonical JSON of an entry whose ``at`` and ``fields`` are already
    in their hashed text form (ISO 8601 with microseconds; canonical JSON). Written inline:
    ``audit verify`` calls this for every entry."""
    q = encode_basestring
    return (
        f'{prev_hash}{{"actor":{"null" if actor is None else q(actor)},'
        f'"actor_id":{"null" if actor_id is None else actor_id},"at":"{at}",'
        f'"comment":{q(comment or "")},'
        f'"definition":{"null" if definition is None else q(definition)},'
        f'"event":{"null" if event is None else q(event)},"fields":{fields},'
        f'"from":{"null" if from_state is None else q(from_state)},'
        f'"request_id":{"null" if request_id is None else request_id},'
        f'"seq":{"null" if seq is None else seq},'
        f'"to":{"null" if to_state is None else q(to_state)}}}'
    )


def _fields_text(fields) -> str:
    return canonical_json(fields).decode() if fields else "{}"


def entry_bytes(prev_hash: str, entry) -> bytes:
    """Exactly ``prev_hash + canonical_json(entry_payload(entry))``, written out key by key in
    canonical order: ``audit verify`` rebuilds these bytes for every entry, and the general
    sorted-keys encoder costs more than the hash itself. ``entry`` is a HistoryEntry or a row
    with the same attributes."""
    return _entry_text(
        prev_hash,
        entry.actor_name,
        entry.actor_id,
        _time(entry.at),
        entry.comment,
        entry.definition_hash,
        entry.event,
        _fields_text(entry.fields),
        entry.from_state,
        entry.request_id,
        entry.seq,
        entry.to_state,
    ).encode()


def append_entry(session: Session, request: Request, **entry) -> HistoryEntry:
    """Append the next link of the request's chain and move its head; only adds, never flushes."""
    built = next_entry(request, **entry)
    request.head_hash = built.entry_hash
    session.add(built)
    return built


def next_entry(
    request: Request,
    *,
    seq: int,
    at: datetime,
    actor,
    event: str,
    from_state: str | None,
    to_state: str,
    fields: dict,
    comment: str,
    definition_hash: str,
) -> HistoryEntry:
    """The next link of the request's chain, not yet added to the session. The request's head is
    left as it is: the caller moves it (an attribute set would make the unit of work visit the
    request on the next flush, which the engine's own UPDATE has already written)."""
    entry = HistoryEntry(
        request_id=request.id,
        seq=seq,
        at=as_naive_utc(at),
        actor_id=actor.id if actor is not None else None,
        actor_name=actor.username if actor is not None else "system",
        event=event,
        from_state=from_state,
        to_state=to_state,
        fields=fields,
        comment=comment,
        definition_hash=definition_hash,
        prev_hash=request.head_hash or GENESIS,
    )
    entry.entry_hash = hashlib.sha256(entry_bytes(entry.prev_hash, entry)).hexdigest()
    return entry


def actors_of_event(session: Session, request: Request, event: str) -> set[int]:
    """Ids of the users who fired ``event`` on the request."""
    rows = session.scalars(
        select(HistoryEntry.actor_id).where(
            HistoryEntry.request_id == request.id, HistoryEntry.event == event
        )
    )
    return {r for r in rows if r is not None}


@dataclass
class ChainProblem:
    """The first bad entry of one request's chain."""

    request_id: int
    seq: int | None
    entry_id: int | None
    problem: str

    def __str__(self) -> str:
        where = f"request {self.request_id}"
        if self.seq is not None:
            where += f", entry #{self.seq}"
        if self.entry_id is not None:
            where += f" (history id {self.entry_id})"
        return f"{where}: {self.problem}"


# What the walk reads of each entry, as stored: ``fields`` as its text, ``at`` as the driver
# gives it (text on SQLite, where parsing it into a datetime would cost more than the hash).
_WALKED = (
    "SELECT h.request_id, h.id, h.seq, h.prev_hash, h.entry_hash, h.actor_name, h.actor_id,"
    " h.at, h.comment, h.definition_hash, h.event, h.fields, h.from_state, h.to_state"
    " FROM history_entries h{where} ORDER BY h.request_id, h.id"
)
_HEADS = "SELECT r.id, r.version, r.head_hash FROM requests r{where} ORDER BY r.id"


def _hashed_time(at) -> str:
    """A stored timestamp in its hashed form, from a datetime or the stored text."""
    if isinstance(at, datetime):
        return _time(at)
    if len(at) == 26 and at[10] == " ":  # SQLite: 'YYYY-MM-DD HH:MM:SS.ffffff'
        return f"{at[:10]}T{at[11:]}"
    return format_time(datetime.fromisoformat(at))


def _row_hash(row, fields_text: str) -> str:
    """SHA-256 hex of a walked row's bytes with the given fields text."""
    _rid, _id, _seq, prev, _digest, actor, actor_id, at, comment, definition, event = row[:11]
    text = _entry_text(
        prev,
        actor,
        actor_id,
        _hashed_time(at),
        comment,
        definition,
        event,
        fields_text,
        row[12],
        row[0],
        row[2],
        row[13],
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _intact(row) -> bool:
    """Whether a walked row hashes to its stored hash. The stored fields text is tried first;
    a text that is not in canonical form (an older database) is re-encoded before judging. A
    value of the wrong type where text belongs (a BLOB put in by hand) was never hashed."""
    fields = row[11]
    try:
        if fields and _row_hash(row, fields) == row[4]:
            return True
        value = json.loads(fields) if fields else None
        return _row_hash(row, _fields_text(value)) == row[4]
    except (TypeError, ValueError):
        return False


def _chain_problem(
    request_id: int, version: int, head: str, entries: list, intact=_intact
) -> ChainProblem | None:
    """The first bad entry of one chain (entries in id order, or in seq order), or None;
    ``intact`` judges one row's content."""
    prev, previous_id = GENESIS, 0
    for expected_seq, row in enumerate(entries, start=1):
        entry_id, seq, prev_hash, digest = row[1], row[2], row[3], row[4]
        if seq != expected_seq:
            missing = "deleted or reordered" if seq > expected_seq else "reordered"
            return ChainProblem(
                request_id,
                expected_seq,
                entry_id,
                f"entry #{expected_seq} is missing ({missing}); found #{seq}",
            )
        if entry_id <= previous_id:
            # Only entries read in seq order show this; read in id order, the chain's entries
            # would not come in seq order, so that walk must not pass it either.
            return ChainProblem(request_id, seq, entry_id, "is stored out of order (reordered)")
        if prev_hash != prev:
            return ChainProblem(
                request_id,
                seq,
                entry_id,
                "does not chain from the entry before it (reordered or replaced)",
            )
        if not intact(row):
            return ChainProblem(
                request_id, seq, entry_id, "content does not match its hash (edited)"
            )
        prev, previous_id = digest, entry_id
    if len(entries) != version or prev != head:
        return ChainProblem(
            request_id,
            len(entries) + 1,
            None,
            f"chain ends at entry #{len(entries)} but the request is at version "
            f"{version}: its last entries were deleted",
        )
    return None


def _walk(rows, heads, intact=_intact) -> Iterator[tuple[int, int, ChainProblem | None]]:
    """Merge entry rows (request id, id, seq, prev hash, hash, …; in request and id order) with
    request heads (id, version, head hash; in id order): (request id, entries, problem)."""
    rows = iter(rows)
    row = next(rows, None)
    for request_id, version, head in heads:
        while row is not None and row[0] < request_id:  # entries of no request: not a chain
            row = next(rows, None)
        entries = []
        while row is not None and row[0] == request_id:
            entries.append(row)
            row = next(rows, None)
        yield request_id, len(entries), _chain_problem(request_id, version, head, entries, intact)


def walk_chains(
    session: Session, request_ids: list[int] | None = None
) -> Iterator[tuple[int, int, ChainProblem | None]]:
    """Walk chains in request id order in Python, the authority on every entry: yields
    (request id, entries, first problem or None) per request; all requests unless named."""
    connection = session.connection()
    if request_ids is None:
        where_h = where_r = ""
    else:
        if not request_ids:
            return
        ids = ", ".join(str(int(i)) for i in request_ids)
        where_h, where_r = f" WHERE h.request_id IN ({ids})", f" WHERE r.id IN ({ids})"
    # Plain DB-API cursors: SQLAlchemy's row objects would cost as much as the hashing.
    driver = connection.connection.driver_connection
    rows, heads = driver.cursor(), driver.cursor()
    rows.execute(_WALKED.format(where=where_h))
    heads.execute(_HEADS.format(where=where_r))
    yield from _walk(rows, heads)


# ---------------------------------------------------------------- verification in PostgreSQL
#
# On PostgreSQL the database itself re-hashes every entry and checks every link, in two
# set-based statements run side by side; only the chains it cannot confirm are walked in
# Python (walk_chains), the authority, which names the first bad entry. The database can only
# confirm what Python would. It rebuilds each entry's bytes with json.dumps's escaping of '"'
# and '\\' in every text column. A control character stays raw where json.dumps escapes it,
# which can make the bytes differ but never match: Python's bytes hold no raw control
# character. ``fields`` is stored as its canonical text (models.CanonicalJSON), the very bytes
# that were hashed. So an entry whose rebuilt bytes hash to its stored hash holds exactly the
# values that were hashed. SQLite has no SHA-256 of its own, and Python walking the rows there
# is faster than SQLite calling Python back for every entry.


def _escaped(column: str) -> str:
    # json.dumps escapes '\\' and '"' so; backslashes first, or the quotes' would double.
    # chr(34) is '"' and chr(92) a backslash, whatever the server's quoting settings.
    backslashes = f"replace({column}, chr(92), chr(92) || chr(92))"
    return f"chr(34) || replace({backslashes}, chr(34), chr(92) || chr(34)) || chr(34)"


# entry_bytes of history row ``h`` as PostgreSQL text (NULL when a NOT NULL column is NULL).
# to_char always writes six digits of microseconds, as isoformat does, and does not depend on
# DateStyle. Escaping the name columns too costs less than checking that they need none.
REBUILT_BYTES_SQL = " || ".join(
    [
        "h.prev_hash",
        """'{"actor":'""",
        _escaped("h.actor_name"),
        """',"actor_id":'""",
        "coalesce(h.actor_id::text, 'null')",
        """',"at":"'""",
        """to_char(h.at, 'YYYY-MM-DD"T"HH24:MI:SS.US')""",
        """'","comment":'""",
        _escaped("h.comment"),
        """',"definition":'""",
        _escaped("h.definition_hash"),
        """',"event":'""",
        _escaped("h.event"),
        """',"fields":'""",
        "h.fields",
        """',"from":'""",
        f"coalesce({_escaped('h.from_state')}, 'null')",
        """',"request_id":'""",
        "h.request_id::text",
        """',"seq":'""",
        "h.seq::text",
        """',"to":'""",
        _escaped("h.to_state"),
        """'}'""",
    ]
)

# Every entry re-hashed: a parallel scan.
_UNCONFIRMED_ENTRIES = (
    "SELECT DISTINCT h.request_id FROM history_entries h"
    " WHERE NOT coalesce("
    f"encode(sha256(convert_to({REBUILT_BYTES_SQL}, 'UTF8')), 'hex') = h.entry_hash, false)"
)
# Every chain in one ordered pass: entries numbered 1, 2, 3 …, each chained from the one before
# (the first from genesis), as many as the request's version, the last one its head. A request
# without entries is unconfirmed too. The same pass counts the requests and their entries, so
# the counts ``audit verify`` reports are those of the snapshot it checked, with no second scan
# of the history to count it (0.45 s of 15 s at 10M entries).
_UNCONFIRMED_CHAINS = (
    "SELECT coalesce(array_agg(r.id ORDER BY r.id) FILTER (WHERE c.request_id IS NULL"
    "  OR c.broken = 1 OR c.last_seq IS DISTINCT FROM r.version"
    "  OR c.last_hash IS DISTINCT FROM r.head_hash), '{}'),"
    " count(*), coalesce(sum(c.entries), 0)"
    " FROM requests r LEFT JOIN ("
    " SELECT x.request_id, count(*) AS entries, max(x.seq) AS last_seq,"
    "  max(CASE WHEN x.next_seq IS NULL THEN x.entry_hash END) AS last_hash,"
    "  max(CASE WHEN x.seq = x.position"
    f"   AND x.prev_hash = coalesce(x.chained_from, '{GENESIS}') THEN 0 ELSE 1 END) AS broken"
    " FROM (SELECT h.request_id, h.seq, h.prev_hash, h.entry_hash,"
    "   row_number() OVER w AS position, lag(h.entry_hash) OVER w AS chained_from,"
    "   lead(h.seq) OVER w AS next_seq"
    "  FROM history_entries h WINDOW w AS (PARTITION BY h.request_id ORDER BY h.seq)) x"
    " GROUP BY x.request_id) c ON c.request_id = r.id"
)


def _rehashed_elsewhere(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return list(connection.exec_driver_sql(_UNCONFIRMED_ENTRIES).scalars())


def _checked_in_database(session: Session) -> tuple[list[int], int, int]:
    """(ids of the requests whose chains PostgreSQL could not confirm by itself, in id order;
    requests; their entries). Raises what the driver raises.

    The re-hashing runs on a second connection while the chains are checked and counted on the
    session's, so both cores work; each statement reads one consistent snapshot of its own.
    """
    bind, connection = session.get_bind(), session.connection()
    if isinstance(bind, Engine):
        with ThreadPoolExecutor(max_workers=1) as pool:
            rehashed = pool.submit(_rehashed_elsewhere, bind)
            broken, requests, entries = connection.exec_driver_sql(_UNCONFIRMED_CHAINS).one()
            found = set(broken) | set(rehashed.result())
    else:
        found = set(connection.exec_driver_sql(_UNCONFIRMED_ENTRIES).scalars())
        broken, requests, entries = connection.exec_driver_sql(_UNCONFIRMED_CHAINS).one()
        found.update(broken)
    return sorted(found), requests, int(entries)


def unconfirmed_requests(session: Session) -> list[int]:
    """Ids of the requests whose chains PostgreSQL could not confirm by itself, in id order;
    raises what the driver raises."""
    return _checked_in_database(session)[0]


# ---------------------------------------------------------------- verification in SQLite
#
# SQLite has no SHA-256, and calling Python back for every entry costs more than the walk. So
# SQLite rebuilds each entry's bytes (json_quote escapes exactly as json.dumps does, control
# characters included) and Python only hashes them and checks the links. A chain this cannot
# confirm is walked by the authority (walk_chains), as on PostgreSQL, and the same argument
# holds: the rebuilt bytes are valid JSON of the stored values, so if they hash to the stored
# hash they are the bytes that were hashed. A BLOB in a text column makes json_quote fail, and
# then the whole database is walked. Threads would not help: SQLite's allocator takes one
# global mutex, and json_quote and printf allocate for every entry (two threads ran slower
# than one). Separate processes do, each on its own range of requests and connection: at 1M
# entries, 4.4 µs an entry in one process, 2.4–2.6 µs with two (docs/BENCHMARKS.md).
# Entries are read in seq order, which the UNIQUE (request_id, seq) index gives without a sort;
# _chain_problem refuses a chain whose ids do not rise with its seqs, as the walk in id order
# would. The forked processes read with sqlean.py's SQLite where it is installed: a newer
# SQLite (3.50 against Debian's 3.40) whose printf and JSON functions run about 20% fewer
# instructions per entry. It only ever opens the database in those processes, never beside the
# app's sqlite3 in one process, where two copies of SQLite on one file would lose each other's
# POSIX locks. In a forked child it is the cleaner reader too: the app's sqlite3 there would
# carry the parent's record of locks the child does not hold; sqlean's starts empty.

# The stored ``at`` text turned back into format_time's form, as _hashed_time does for it; any
# other shape gives no time at all, which no hashed entry holds (a BLOB never equals ' ').
_SQLITE_TIME = (
    "iif(substr(h.at, 11, 1) = ' ' AND length(h.at) IN (19, 26),"
    " substr(h.at, 1, 10) || 'T' || substr(h.at, 12) || iif(length(h.at) = 19, '.000000', ''),"
    " '')"
)
_SQLITE_REBUILT = (
    'CAST(printf(\'%s{"actor":%s,"actor_id":%s,"at":"%s","comment":%s,'
    '"definition":%s,"event":%s,"fields":%s,"from":%s,"request_id":%s,'
    '"seq":%s,"to":%s}\', h.prev_hash, json_quote(h.actor_name),'
    " json_quote(h.actor_id), " + _SQLITE_TIME + ", json_quote(h.comment),"
    " json_quote(h.definition_hash), json_quote(h.event), h.fields, json_quote(h.from_state),"
    " h.request_id, h.seq, json_quote(h.to_state)) AS BLOB)"
)
_SQLITE_ROWS = (
    "SELECT h.request_id, h.id, h.seq, h.prev_hash, h.entry_hash, "
    + _SQLITE_REBUILT
    + " FROM history_entries h WHERE h.request_id BETWEEN ? AND ? ORDER BY h.request_id, h.seq"
)
_SQLITE_HEADS = (
    "SELECT r.id, r.version, r.head_hash FROM requests r WHERE r.id BETWEEN ? AND ? ORDER BY r.id"
)
# Below this many requests one process checks them all: starting more costs more than it saves.
PARALLEL_FROM_REQUESTS = 20_000
_MOST_PROCESSES = 8
# Ranges are handed out as processes come free; with many small ones, the last process to
# finish waits less for the others (8% more entries/s at 1M entries than 4 per process).
_RANGES_PER_PROCESS = 16


def _rebuilt_intact(row) -> bool:
    return hashlib.sha256(row[5]).hexdigest() == row[4]


def _confirm_range(connection, low: int, high: int) -> tuple[list[int], int, int]:
    """(ids of the requests in [low, high] that SQLite's rebuilt bytes do not confirm;
    requests; their entries) over one DB-API connection. Raises what sqlite3 raises."""
    rows, heads = connection.cursor(), connection.cursor()
    rows.execute(_SQLITE_ROWS, (low, high))
    heads.execute(_SQLITE_HEADS, (low, high))
    unconfirmed, requests, entries = [], 0, 0
    for request_id, count, problem in _walk(rows, heads, _rebuilt_intact):
        requests += 1
        entries += count
        if problem is not None:
            unconfirmed.append(request_id)
    return unconfirmed, requests, entries


def checking_driver():
    """The DB-API module a checking process reads with: sqlean.py when installed, else the
    standard library's sqlite3. Raises nothing."""
    try:
        import sqlean
    except ImportError:
        return sqlite3
    return sqlean


def _confirm_range_in_process(job: tuple[str, int, int]) -> tuple[list[int], int, int] | None:
    """_confirm_range on a connection of its own, in one read transaction; None when SQLite
    cannot rebuild an entry (a BLOB where text belongs)."""
    path, low, high = job
    driver = checking_driver()
    # mode=rw: a database that is gone is an error, not a new empty file.
    uri = f"file:{pathname2url(os.path.abspath(path))}?mode=rw"
    connection = driver.connect(uri, uri=True, timeout=30, isolation_level=None)
    try:
        connection.execute("PRAGMA query_only = 1")
        connection.execute("BEGIN")
        return _confirm_range(connection, low, high)
    except driver.Error:
        return None
    finally:
        connection.close()


def _process_count() -> int:
    return min(len(os.sched_getaffinity(0)), _MOST_PROCESSES)


def _ranges(first: int, last: int, parts: int) -> list[tuple[int, int]]:
    """[first, last] cut into ``parts`` consecutive ranges of ids."""
    step = -(-(last - first + 1) // parts)
    return [(low, min(low + step - 1, last)) for low in range(first, last + 1, step)]


def _checked_in_sqlite(session: Session) -> tuple[list[int], int, int] | None:
    """(ids of the requests SQLite's rebuilt bytes do not confirm, in id order; requests; their
    entries), or None when SQLite cannot rebuild every entry. Raises what the driver raises.

    A file database with enough requests is checked by one forked process per core, each over
    its own range of request ids in a read transaction of its own; only a process without other
    threads forks (a thread holding a lock at the fork would leave it held in the child).
    """
    connection = session.connection()
    first, last, count = connection.exec_driver_sql(
        "SELECT min(id), max(id), count(*) FROM requests"
    ).one()
    if not count:
        return [], 0, 0
    url = session.get_bind().url
    path, processes = url.database, _process_count()
    if (
        count < PARALLEL_FROM_REQUESTS
        or processes < 2
        or not path
        or path == ":memory:"
        or url.query  # a URI filename or options another connection would have to repeat
        or threading.active_count() > 1
    ):
        try:
            return _confirm_range(connection.connection.driver_connection, first, last)
        except sqlite3.Error:
            return None
    ranges = _ranges(first, last, processes * _RANGES_PER_PROCESS)
    jobs = [(path, low, high) for low, high in ranges]
    # gc.freeze: a child never collects what it inherited, so no connection of the app's that
    # was garbage at the fork is closed there (closing its file would drop the child's locks).
    with multiprocessing.get_context("fork").Pool(processes, initializer=gc.freeze) as pool:
        results = pool.map(_confirm_range_in_process, jobs)
    if any(result is None for result in results):
        return None
    unconfirmed = [request_id for result in results for request_id in result[0]]
    return unconfirmed, sum(r[1] for r in results), sum(r[2] for r in results)


def verify_all(session: Session) -> tuple[int, int, ChainProblem | None]:
    """Verify every chain; returns (requests, entries, first problem or None). Raises what the
    driver raises.

    The database confirms what it can (PostgreSQL re-hashes in SQL, SQLite rebuilds the bytes
    for Python to hash); the Python walk, the authority, checks the rest and names the first
    problem. With a problem, the counts are those of the requests up to and including the
    broken one, as a walk in request order checks them.
    """
    if session.get_bind().dialect.name == "postgresql":
        checked = _checked_in_database(session)
    else:
        checked = _checked_in_sqlite(session)
    if checked is None:
        requests = entries = 0
        for _request_id, count, problem in walk_chains(session):
            requests += 1
            entries += count
            if problem is not None:
                return requests, entries, problem
        return requests, entries, None
    suspects, requests, entries = checked
    for start in range(0, len(suspects), 1000):
        for request_id, _count, problem in walk_chains(session, suspects[start : start + 1000]):
            if problem is not None:
                return (*_counts(session, request_id), problem)
    return requests, entries, None


def _counts(session: Session, up_to: int) -> tuple[int, int]:
    requests = select(func.count()).select_from(Request).where(Request.id <= up_to)
    entries = select(func.count()).select_from(HistoryEntry)
    return session.scalar(requests), session.scalar(entries.where(HistoryEntry.request_id <= up_to))


def checkpoint(session: Session) -> tuple[str, int]:
    """One SHA-256 over every chain head, in request order; returns (digest, number of chains)."""
    digest = hashlib.sha256()
    count = 0
    rows = session.execute(
        select(Request.id, Request.version, Request.head_hash).order_by(Request.id)
    )
    for row in rows:
        digest.update(f"{row.id}:{row.version}:{row.head_hash}\n".encode("ascii"))
        count += 1
    return digest.hexdigest(), count
