"""The hash-chained history (SPEC §3): tampering with raw SQL is found by ``audit verify``,
``audit checkpoint`` pins every chain head, and the hash itself is stable.

Every tampering below goes straight to the database with ``text()`` on the engine and is
committed, as a database administrator would do it; the application never sees it happen.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import sessionmaker

from models import HistoryEntry, Request, User
from workflow.canonical import canonical_json
from workflow.engine import create_request, fire
from workflow.errors import WorkflowError
from workflow.history import (
    GENESIS,
    compute_hash,
    entry_bytes,
    entry_payload,
    format_time,
    verify_all,
)
from workflow.history import (
    checkpoint as history_checkpoint,
)

HEX64 = re.compile(r"\b([0-9a-f]{64})\b")
CHANGE_SQL = "ALTER TABLE patient ADD COLUMN follow_up_note VARCHAR(200);"


# ---------------------------------------------------------------- a small history to attack


@dataclass
class Chains:
    """Three requests with 4, 5 and 2 entries: ``a`` (requirement), ``b`` (incident), ``c``."""

    a: int
    b: int
    c: int
    users: dict[str, int]

    @property
    def entries(self) -> int:
        return 4 + 5 + 2


def _fire(db, request, event, actor, fields=None, comment="", now=None):
    return fire(db, request, event, actor, fields or {}, request.version, comment=comment, now=now)


def build_chains(db, catalog, world) -> Chains:
    """Create the requests by real engine calls and commit."""
    u = world.users
    cardiology = world.departments["cardiology"].id
    a = create_request(
        db,
        catalog,
        u["dept_user"],
        kind="requirement",
        contract_id=world.contract.id,
        system_id=world.system.id,
        department_id=cardiology,
        title="随访表增加备注字段",
        description="心内科需要在随访表中记录备注。",
        fields={"req_type": "new_feature", "module": "随访"},
    )
    _fire(db, a, "submit", u["dept_user"])
    _fire(db, a, "triage", u["it_staff"], {"priority": "high"}, comment="请尽快处理 — ASAP")
    _fire(
        db,
        a,
        "estimate",
        u["vendor_engineer"],
        {
            "estimate_days": "2.5",
            "analysis": "增加一个字段",
            "modification_plan": "One column, one form field.",
            "promised_date": "2026-09-01",
        },
    )
    b = create_request(
        db,
        catalog,
        u["dept_user"],
        kind="incident",
        contract_id=world.contract.id,
        system_id=world.system.id,
        department_id=cardiology,
        title="打印机无法打印",
        fields={"severity": "L2", "location": "Ward 3", "reported_via": "phone"},
    )
    _fire(db, b, "acknowledge", u["vendor_engineer"])
    _fire(db, b, "start_work", u["vendor_engineer"])
    _fire(db, b, "wait_for_hospital", u["vendor_engineer"], comment="等待科室复现问题")
    _fire(db, b, "resume", u["dept_user"])
    c = create_request(
        db,
        catalog,
        u["vendor_engineer"],
        kind="schema_change",
        contract_id=world.contract.id,
        system_id=world.system.id,
        title="Add follow-up note",
        fields={
            "database_name": "followup",
            "dialect": "mysql",
            "change_sql": CHANGE_SQL,
            "reason": "Store a note per follow-up.",
        },
    )
    _fire(db, c, "submit_for_review", u["vendor_engineer"])
    db.commit()
    chains = Chains(a.id, b.id, c.id, {name: user.id for name, user in u.items()})
    assert (a.version, b.version, c.version) == (4, 5, 2)
    db.close()  # no open transaction while the tests write behind the application's back
    return chains


@pytest.fixture
def chains(db, catalog, world) -> Chains:
    return build_chains(db, catalog, world)


@pytest.fixture
def tamper(app):
    """Run raw SQL on the application's database and commit it."""
    engine = app.extensions["changeflow.engine"]

    def run(sql: str, **params):
        statement = text(sql)
        if "fields" in params:
            statement = statement.bindparams(
                bindparam("fields", type_=HistoryEntry.__table__.c.fields.type)
            )
        with engine.begin() as conn:
            return conn.execute(statement, params).rowcount

    return run


def verify(runner):
    result = runner.invoke(args=["audit", "verify"])
    return result.exit_code, result.output + (result.stderr or "")


def assert_fails_naming(runner, request_id: int, seq: int | None = None) -> str:
    code, output = verify(runner)
    assert code != 0, f"audit verify passed after tampering:\n{output}"
    assert re.search(rf"\brequest {request_id}\b", output), output
    if seq is not None:
        assert re.search(rf"#{seq}\b", output), output
    return output


def first_problem(app):
    with sessionmaker(app.extensions["changeflow.engine"])() as session:
        return verify_all(session)[2]


def checkpoint_digest(runner) -> tuple[str, str]:
    result = runner.invoke(args=["audit", "checkpoint"])
    assert result.exit_code == 0, result.output
    match = HEX64.match(result.output.strip())
    assert match, f"no 64-hex digest at the start of: {result.output!r}"
    return match.group(1), result.output


def stored_entries(app, request_id: int) -> list[HistoryEntry]:
    with sessionmaker(app.extensions["changeflow.engine"], expire_on_commit=False)() as s:
        rows = s.scalars(
            select(HistoryEntry)
            .where(HistoryEntry.request_id == request_id)
            .order_by(HistoryEntry.seq)
        ).all()
        s.expunge_all()
        return list(rows)


# ---------------------------------------------------------------- untouched


class TestUntouched:
    def test_verify_passes_with_counts(self, runner, chains):
        code, output = verify(runner)
        assert code == 0, output
        assert re.search(r"\b3 request", output), output
        assert re.search(rf"\b{chains.entries} history entr", output), output
        assert "FAILED" not in output

    def test_verify_all_agrees(self, app, chains):
        with sessionmaker(app.extensions["changeflow.engine"])() as session:
            assert verify_all(session) == (3, chains.entries, None)

    def test_every_stored_entry_recomputes_to_its_hash(self, app, chains):
        for request_id in (chains.a, chains.b, chains.c):
            prev = GENESIS
            entries = stored_entries(app, request_id)
            for seq, entry in enumerate(entries, start=1):
                assert entry.seq == seq
                assert entry.prev_hash == prev
                assert compute_hash(prev, entry_payload(entry)) == entry.entry_hash
                prev = entry.entry_hash

    def test_unicode_survives_the_database(self, app, chains):
        entries = stored_entries(app, chains.a)
        assert entries[2].comment == "请尽快处理 — ASAP"
        assert entries[0].fields["title"] == "随访表增加备注字段"
        assert entries[3].fields["analysis"] == "增加一个字段"


# ---------------------------------------------------------------- edited rows


class TestEditedRows:
    @pytest.mark.parametrize(
        ("column", "value"),
        [
            ("comment", "Nothing to see here."),
            ("actor_name", "it_staff2"),
            ("event", "resolve"),
            ("from_state", "reported"),
            ("to_state", "resolved"),
            ("definition_hash", "f" * 64),
        ],
    )
    def test_edited_column_is_named(self, app, runner, chains, tamper, column, value):
        assert tamper(
            f"UPDATE history_entries SET {column} = :v WHERE request_id = :r AND seq = 3",
            v=value,
            r=chains.b,
        )
        output = assert_fails_naming(runner, chains.b, 3)
        assert f"request {chains.a}," not in output
        problem = first_problem(app)
        assert (problem.request_id, problem.seq) == (chains.b, 3)

    def test_edited_fields_are_named(self, runner, chains, tamper):
        assert tamper(
            "UPDATE history_entries SET fields = :fields WHERE request_id = :r AND seq = 4",
            fields={
                "estimate_days": "0.5",
                "analysis": "增加一个字段",
                "modification_plan": "One column, one form field.",
                "promised_date": "2026-09-01",
            },
            r=chains.a,
        )
        assert_fails_naming(runner, chains.a, 4)

    def test_edited_actor_id_is_named(self, runner, chains, tamper):
        assert tamper(
            "UPDATE history_entries SET actor_id = :u WHERE request_id = :r AND seq = 2",
            u=chains.users["it_staff2"],
            r=chains.b,
        )
        assert_fails_naming(runner, chains.b, 2)

    def test_edited_time_is_named(self, runner, chains, tamper):
        assert tamper(
            "UPDATE history_entries SET at = :at WHERE request_id = :r AND seq = 2",
            at=datetime(2026, 1, 1, 8, 0, 0),
            r=chains.c,
        )
        assert_fails_naming(runner, chains.c, 2)

    def test_one_character_of_unicode_comment(self, runner, chains, tamper):
        assert tamper(
            "UPDATE history_entries SET comment = :c WHERE request_id = :r AND seq = 3",
            c="请尽快处理 — ASAP。",
            r=chains.a,
        )
        assert_fails_naming(runner, chains.a, 3)

    def test_edited_creation_entry_is_named(self, runner, chains, tamper):
        assert tamper(
            "UPDATE history_entries SET comment = 'x' WHERE request_id = :r AND seq = 1",
            r=chains.c,
        )
        assert_fails_naming(runner, chains.c, 1)

    def test_edited_last_entry_is_named(self, runner, chains, tamper):
        assert tamper(
            "UPDATE history_entries SET actor_name = 'it_staff' WHERE request_id = :r AND seq = 5",
            r=chains.b,
        )
        assert_fails_naming(runner, chains.b, 5)

    def test_first_of_two_edits_is_named(self, runner, chains, tamper):
        for seq in (4, 2):
            tamper(
                "UPDATE history_entries SET comment = 'x' WHERE request_id = :r AND seq = :s",
                r=chains.b,
                s=seq,
            )
        assert_fails_naming(runner, chains.b, 2)

    def test_edit_with_recomputed_hash_still_breaks_the_next_link(
        self, app, runner, chains, tamper
    ):
        """An attacker who knows the algorithm re-hashes the row: the next link breaks."""
        entry = stored_entries(app, chains.b)[2]
        entry.comment = "Rewritten."
        new_hash = compute_hash(entry.prev_hash, entry_payload(entry))
        tamper(
            "UPDATE history_entries SET comment = 'Rewritten.', entry_hash = :h "
            "WHERE request_id = :r AND seq = 3",
            h=new_hash,
            r=chains.b,
        )
        output = assert_fails_naming(runner, chains.b)
        assert re.search(r"#[34]\b", output), output

    def test_tampering_with_another_request_is_found_too(self, runner, chains, tamper):
        tamper(
            "UPDATE history_entries SET comment = 'x' WHERE request_id = :r AND seq = 2",
            r=chains.c,
        )
        output = assert_fails_naming(runner, chains.c, 2)
        assert f"request {chains.b}," not in output


# ---------------------------------------------------------------- deleted, reordered, forged rows


class TestDeletedAndReorderedRows:
    def test_deleted_middle_row_is_named(self, app, runner, chains, tamper):
        assert tamper("DELETE FROM history_entries WHERE request_id = :r AND seq = 3", r=chains.b)
        assert_fails_naming(runner, chains.b, 3)
        assert (first_problem(app).request_id, first_problem(app).seq) == (chains.b, 3)

    def test_deleted_first_row_is_named(self, runner, chains, tamper):
        assert tamper("DELETE FROM history_entries WHERE request_id = :r AND seq = 1", r=chains.a)
        assert_fails_naming(runner, chains.a, 1)

    def test_deleted_last_row_fails(self, runner, chains, tamper):
        assert tamper("DELETE FROM history_entries WHERE request_id = :r AND seq = 5", r=chains.b)
        assert_fails_naming(runner, chains.b, 5)

    def test_deleted_last_row_with_version_lowered_fails(self, runner, chains, tamper):
        tamper("DELETE FROM history_entries WHERE request_id = :r AND seq = 5", r=chains.b)
        tamper(
            "UPDATE requests SET version = 4, state = 'waiting_hospital' WHERE id = :r", r=chains.b
        )
        assert_fails_naming(runner, chains.b)

    def test_deleted_whole_chain_fails(self, runner, chains, tamper):
        assert tamper("DELETE FROM history_entries WHERE request_id = :r", r=chains.c) == 2
        assert_fails_naming(runner, chains.c)

    @pytest.mark.parametrize(("first", "second"), [(2, 3), (2, 4), (4, 5)])
    def test_swapped_rows_are_named(self, runner, chains, tamper, first, second):
        # (request_id, seq) is unique: go through a temporary seq.
        sql = "UPDATE history_entries SET seq = :new WHERE request_id = :r AND seq = :old"
        assert tamper(sql, new=-1, old=first, r=chains.b)
        assert tamper(sql, new=first, old=second, r=chains.b)
        assert tamper(sql, new=second, old=-1, r=chains.b)
        assert_fails_naming(runner, chains.b, first)

    def test_forged_entry_appended_fails(self, app, runner, chains, tamper):
        """A well-formed sixth entry that the request's version and head do not know about."""
        last = stored_entries(app, chains.b)[-1]
        forged = HistoryEntry(
            request_id=chains.b,
            seq=6,
            at=datetime(2026, 7, 1, 12, 0, 0, 123456),
            actor_id=chains.users["dept_user"],
            actor_name="dept_user",
            event="resolve",
            from_state="in_progress",
            to_state="resolved",
            fields={"resolution": "fixed"},
            comment="",
            definition_hash=last.definition_hash,
            prev_hash=last.entry_hash,
        )
        forged.entry_hash = compute_hash(forged.prev_hash, entry_payload(forged))
        assert tamper(
            "INSERT INTO history_entries (request_id, seq, at, actor_id, actor_name, event, "
            "from_state, to_state, fields, comment, definition_hash, prev_hash, entry_hash) "
            "VALUES (:r, 6, :at, :u, 'dept_user', 'resolve', 'in_progress', 'resolved', "
            ":fields, '', :d, :p, :h)",
            r=chains.b,
            at=forged.at,
            u=forged.actor_id,
            fields=forged.fields,
            d=forged.definition_hash,
            p=forged.prev_hash,
            h=forged.entry_hash,
        )
        assert_fails_naming(runner, chains.b)


class TestRequestRow:
    def test_changed_head_hash_fails(self, runner, chains, tamper):
        assert tamper("UPDATE requests SET head_hash = :h WHERE id = :r", h="0" * 64, r=chains.b)
        assert_fails_naming(runner, chains.b)

    def test_head_hash_pointing_at_an_earlier_entry_fails(self, app, runner, chains, tamper):
        earlier = stored_entries(app, chains.b)[2].entry_hash
        tamper("UPDATE requests SET head_hash = :h WHERE id = :r", h=earlier, r=chains.b)
        assert_fails_naming(runner, chains.b)

    def test_raised_version_fails(self, runner, chains, tamper):
        assert tamper("UPDATE requests SET version = version + 1 WHERE id = :r", r=chains.a)
        assert_fails_naming(runner, chains.a)


# ---------------------------------------------------------------- checkpoint


class TestCheckpoint:
    def test_prints_a_digest_over_all_chains(self, app, runner, chains):
        digest, output = checkpoint_digest(runner)
        assert re.search(r"\b3 chain", output), output
        with sessionmaker(app.extensions["changeflow.engine"])() as session:
            assert history_checkpoint(session) == (digest, 3)

    def test_same_when_nothing_changed(self, runner, chains):
        assert checkpoint_digest(runner)[0] == checkpoint_digest(runner)[0]

    def test_changes_when_a_chain_grows(self, app, db, runner, chains):
        before, _ = checkpoint_digest(runner)
        request = db.get(Request, chains.c)
        fire(db, request, "approve", db.get(User, chains.users["it_dba"]), {}, request.version)
        db.commit()
        db.close()
        after, output = checkpoint_digest(runner)
        assert after != before
        assert re.search(r"\b3 chain", output), output
        assert checkpoint_digest(runner)[0] == after
        assert verify(runner)[0] == 0

    def test_changes_when_a_chain_is_added(self, db, catalog, runner, chains):
        before, _ = checkpoint_digest(runner)
        create_request(
            db,
            catalog,
            db.get(User, chains.users["dept_user"]),
            kind="incident",
            contract_id=db.get(Request, chains.b).contract_id,
            title="Another one",
            fields={"severity": "L3"},
        )
        db.commit()
        db.close()
        after, output = checkpoint_digest(runner)
        assert after != before
        assert re.search(r"\b4 chain", output), output

    def test_refused_fire_changes_nothing(self, db, runner, chains):
        before, _ = checkpoint_digest(runner)
        request = db.get(Request, chains.c)
        with pytest.raises(WorkflowError):
            fire(db, request, "approve", db.get(User, chains.users["vendor_engineer"]), {}, 2)
        db.commit()
        db.close()
        assert checkpoint_digest(runner)[0] == before

    def test_catches_a_rewrite_that_verify_cannot(self, app, runner, chains, tamper):
        """Drop the last entry and repair version and head: every chain still verifies, but
        the printed checkpoint no longer matches (SPEC §3: not even a DBA goes unnoticed)."""
        before, _ = checkpoint_digest(runner)
        entries = stored_entries(app, chains.b)
        tamper("DELETE FROM history_entries WHERE request_id = :r AND seq = 5", r=chains.b)
        tamper(
            "UPDATE requests SET version = 4, state = :s, head_hash = :h WHERE id = :r",
            s=entries[3].to_state,
            h=entries[3].entry_hash,
            r=chains.b,
        )
        assert verify(runner)[0] == 0  # internally consistent after the rewrite ...
        assert checkpoint_digest(runner)[0] != before  # ... but the checkpoint moved

    def test_catches_a_fully_rehashed_chain(self, app, runner, chains, tamper):
        before, _ = checkpoint_digest(runner)
        entries = stored_entries(app, chains.a)
        prev = entries[1].entry_hash
        for entry in entries[2:]:
            entry.comment = "rewritten"
            entry.prev_hash = prev
            entry.entry_hash = compute_hash(prev, entry_payload(entry))
            tamper(
                "UPDATE history_entries SET comment = 'rewritten', prev_hash = :p, "
                "entry_hash = :h WHERE id = :i",
                p=entry.prev_hash,
                h=entry.entry_hash,
                i=entry.id,
            )
            prev = entry.entry_hash
        tamper("UPDATE requests SET head_hash = :h WHERE id = :r", h=prev, r=chains.a)
        assert verify(runner)[0] == 0
        assert checkpoint_digest(runner)[0] != before


# ---------------------------------------------------------------- the hash itself


PAYLOAD = {
    "request_id": 7,
    "seq": 2,
    "at": "2026-07-01T08:00:00.000000",
    "actor_id": 3,
    "actor": "it_staff",
    "event": "triage",
    "from": "submitted",
    "to": "triaged",
    "fields": {"priority": "high", "note": "心内科 — é"},
    "comment": "请尽快",
    "definition": "a" * 64,
}


class TestHashStability:
    def test_follows_the_documented_formula(self):
        expected = hashlib.sha256(
            GENESIS.encode()
            + json.dumps(PAYLOAD, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
                "utf-8"
            )
        ).hexdigest()
        assert compute_hash(GENESIS, PAYLOAD) == expected

    def test_same_payload_same_hash(self):
        first = compute_hash(GENESIS, PAYLOAD)
        assert compute_hash(GENESIS, json.loads(json.dumps(PAYLOAD))) == first
        assert re.fullmatch(r"[0-9a-f]{64}", first)

    def test_key_order_is_irrelevant(self):
        reordered = {key: PAYLOAD[key] for key in reversed(list(PAYLOAD))}
        reordered["fields"] = {"note": "心内科 — é", "priority": "high"}
        assert list(reordered) != list(PAYLOAD)
        assert canonical_json(reordered) == canonical_json(PAYLOAD)
        assert compute_hash(GENESIS, reordered) == compute_hash(GENESIS, PAYLOAD)

    def test_canonical_json_is_compact_sorted_utf8(self):
        assert canonical_json({"b": 1, "a": {"d": [1, 2], "c": None}}) == (
            b'{"a":{"c":null,"d":[1,2]},"b":1}'
        )

    def test_unicode_is_kept_not_escaped(self):
        raw = canonical_json({"comment": "心内科 — é"})
        assert raw == '{"comment":"心内科 — é"}'.encode()
        assert b"\\u" not in raw

    def test_previous_hash_is_part_of_the_hash(self):
        assert compute_hash(GENESIS, PAYLOAD) != compute_hash("1" * 64, PAYLOAD)

    @pytest.mark.parametrize("key", sorted(PAYLOAD))
    def test_every_payload_key_counts(self, key):
        changed = dict(PAYLOAD)
        changed[key] = {"changed": True}
        assert compute_hash(GENESIS, changed) != compute_hash(GENESIS, PAYLOAD)

    def test_text_that_looks_alike_hashes_differently(self):
        # NFC "é" and NFD "e" + combining accent are different bytes: nothing is normalised.
        nfc = dict(PAYLOAD, comment="caf\u00e9")
        nfd = dict(PAYLOAD, comment="cafe\u0301")
        assert compute_hash(GENESIS, nfc) != compute_hash(GENESIS, nfd)

    def test_time_format_keeps_microseconds(self):
        assert format_time(datetime(2026, 7, 1, 8, 0)) == "2026-07-01T08:00:00.000000"
        assert format_time(datetime(2026, 7, 1, 8, 0, 0, 5)) == "2026-07-01T08:00:00.000005"

    @pytest.mark.parametrize("microsecond", [0, 1, 999999])
    def test_stored_time_round_trips(self, app, db, catalog, world, microsecond):
        """The hash is computed before the row is stored; reading it back must agree."""
        now = datetime(2026, 7, 1, 8, 30, 15, microsecond)
        request = create_request(
            db,
            catalog,
            world.users["dept_user"],
            kind="incident",
            contract_id=world.contract.id,
            title="时间",
            fields={"severity": "L1"},
            now=now,
        )
        fire(
            db,
            request,
            "acknowledge",
            world.users["it_staff"],
            {},
            1,
            comment="收到 ✓",
            now=now,
        )
        db.commit()
        request_id = request.id
        db.close()
        entries = stored_entries(app, request_id)
        assert [e.at for e in entries] == [now, now]
        for entry in entries:
            assert compute_hash(entry.prev_hash, entry_payload(entry)) == entry.entry_hash
        assert first_problem(app) is None


class TestTimeZones:
    def test_an_aware_time_is_stored_and_hashed_as_utc(self, db, catalog, world):
        from datetime import timedelta, timezone

        shanghai = timezone(timedelta(hours=8))
        req = create_request(
            db,
            catalog,
            world.users["dept_user"],
            kind="requirement",
            contract_id=world.contract.id,
            department_id=world.departments["cardiology"].id,
            title="时区",
            fields={"req_type": "bug", "module": "m"},
        )
        entry = _fire(
            db,
            req,
            "submit",
            world.users["dept_user"],
            now=datetime(2026, 5, 1, 9, 30, tzinfo=shanghai),
        )
        db.commit()
        assert entry.at == datetime(2026, 5, 1, 1, 30)
        assert entry_payload(entry)["at"] == "2026-05-01T01:30:00.000000"
        assert verify_all(db)[2] is None


ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=8,
)


class TestEntryBytes:
    """entry_bytes writes the canonical JSON out by hand for speed; it must never differ from
    the documented formula, whatever the text, numbers or fields hold."""

    @settings(max_examples=300, deadline=None)
    @given(
        prev=st.sampled_from([GENESIS, "a" * 64]),
        request_id=st.integers(1, 2**31 - 1),
        seq=st.integers(1, 10**6),
        at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
        actor_id=st.none() | st.integers(1, 2**31 - 1),
        actor=ANY_TEXT,
        event=ANY_TEXT,
        from_state=st.none() | ANY_TEXT,
        to_state=ANY_TEXT,
        fields=st.dictionaries(ANY_TEXT, JSON_VALUES, max_size=4),
        comment=ANY_TEXT,
        definition=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    )
    def test_equals_the_documented_formula(
        self,
        prev,
        request_id,
        seq,
        at,
        actor_id,
        actor,
        event,
        from_state,
        to_state,
        fields,
        comment,
        definition,
    ):
        entry = HistoryEntry(
            request_id=request_id,
            seq=seq,
            at=at,
            actor_id=actor_id,
            actor_name=actor,
            event=event,
            from_state=from_state,
            to_state=to_state,
            fields=fields,
            comment=comment,
            definition_hash=definition,
        )
        assert entry_bytes(prev, entry) == prev.encode() + canonical_json(entry_payload(entry))


# ---------------------------------------------------------------- verification in the database


def rebuilt_in_database(session, entry_id: int) -> str | None:
    """One stored entry's bytes (as text) as PostgreSQL rebuilds them to re-hash them."""
    from workflow.history import REBUILT_BYTES_SQL

    return session.execute(
        text(f"SELECT {REBUILT_BYTES_SQL} FROM history_entries h WHERE h.id = :i"),
        {"i": entry_id},
    ).scalar_one()


def insert_rewritten_entry(engine, chains) -> tuple[bytes, int, tuple]:
    """An entry of ``c`` rewritten so that plainly quoted columns would rebuild to exactly the
    original's bytes (its fields shaped like the rest of an entry): (the original's hashed
    bytes, the stored entry's id, its row as walked)."""
    from workflow.history import _WALKED

    tail = {"from": None, "request_id": chains.c, "seq": 999}
    original = HistoryEntry(
        request_id=chains.c, seq=999, at=datetime(2026, 11, 2, 2, 0), actor_id=None,
        actor_name="it_staff", event="note", from_state=None, to_state="x", comment="",
        fields={"a": "v", "fields": {}, **tail, "to": "y"},
        definition_hash="d" * 64, prev_hash=GENESIS,
    )  # fmt: skip
    hashed = entry_bytes(GENESIS, original)
    table = HistoryEntry.__table__
    rewritten = {c.key: getattr(original, c.key) for c in table.columns if c.key != "id"}
    rewritten.update(
        entry_hash=hashlib.sha256(hashed).hexdigest(),
        event='note","fields":{"a":"v',
        fields={},
        to_state=f'y"}},"from":null,"request_id":{chains.c},"seq":999,"to":"x',
    )
    with engine.begin() as conn:
        entry_id = conn.execute(table.insert().values(**rewritten).returning(table.c.id))
        entry_id = entry_id.scalar()
    with engine.connect() as conn:
        stored = conn.exec_driver_sql(_WALKED.format(where=f" WHERE h.id = {entry_id}")).one()
    return hashed, entry_id, tuple(stored)


@contextmanager
def probe_entry(engine, chains, at, actor, comment, fields, from_state, actor_id):
    """A stored entry of ``c`` with the given values, deleted afterwards: yields its id."""
    row = {
        "request_id": chains.c,
        "seq": 999,
        "at": at,
        "actor_id": chains.users["it_staff"] if actor_id else None,
        "actor_name": actor[:80],
        "event": "note",
        "from_state": from_state,
        "to_state": "under_review",
        "fields": fields,
        "comment": comment,
        "definition_hash": "d" * 64,
        "prev_hash": GENESIS,
        "entry_hash": "0" * 64,
    }
    table = HistoryEntry.__table__
    with engine.begin() as conn:
        entry_id = conn.execute(table.insert().values(**row).returning(table.c.id)).scalar()
    try:
        yield entry_id
    finally:
        with engine.begin() as conn:
            conn.execute(table.delete().where(table.c.id == entry_id))


def stored_bytes(engine, entry_id: int) -> bytes:
    with sessionmaker(engine)() as session:
        stored = session.execute(select(HistoryEntry).where(HistoryEntry.id == entry_id))
        return entry_bytes(GENESIS, stored.scalar_one())


probe_settings = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
probe_values = given(
    at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)),
    actor=ANY_TEXT.filter(lambda t: "\x00" not in t),
    comment=ANY_TEXT.filter(lambda t: "\x00" not in t),
    fields=st.dictionaries(ANY_TEXT, JSON_VALUES, max_size=3).filter(
        lambda f: "\\u0000" not in canonical_json(f).decode()
    ),
    from_state=st.none() | st.sampled_from(["in_progress", "已解决"]),
    actor_id=st.none() | st.just(1),
)


def change_severity_with_comment(app, chains, comment: str) -> None:
    db = sessionmaker(app.extensions["changeflow.engine"], expire_on_commit=False)()
    request = db.get(Request, chains.b)
    actor = db.get(User, chains.users["it_staff"])
    fire(
        db, request, "change_severity", actor, {"severity": "L3"}, request.version, comment=comment
    )
    db.commit()
    db.close()


class TestVerifiedInPostgres:
    """On PostgreSQL audit verify re-hashes every entry inside the database and walks in Python
    only the chains the database cannot confirm; it must confirm intact chains on its own and
    never confirm one that Python would refuse (every tampering test above runs through it)."""

    def test_intact_chains_are_confirmed_without_python(self, app, chains, pg_only):
        from workflow.history import unconfirmed_requests

        with sessionmaker(app.extensions["changeflow.engine"])() as session:
            assert unconfirmed_requests(session) == []

    def test_every_stored_entry_is_rebuilt_byte_for_byte(self, app, chains, pg_only):
        entries = [e for r in (chains.a, chains.b, chains.c) for e in stored_entries(app, r)]
        assert len(entries) == chains.entries
        with sessionmaker(app.extensions["changeflow.engine"])() as session:
            for entry in entries:
                rebuilt = rebuilt_in_database(session, entry.id)
                assert rebuilt.encode() == entry_bytes(entry.prev_hash, entry)

    def test_quotes_backslashes_and_chinese_are_confirmed_too(self, app, chains, pg_only):
        from workflow.history import unconfirmed_requests

        change_severity_with_comment(app, chains, '科室说"打印机"在 C:\\printers\\ 下')
        with sessionmaker(app.extensions["changeflow.engine"])() as session:
            assert unconfirmed_requests(session) == []
            assert verify_all(session) == (3, chains.entries + 1, None)

    def test_a_control_character_is_left_to_python_which_confirms_it(self, app, chains, pg_only):
        from workflow.history import unconfirmed_requests

        change_severity_with_comment(app, chains, "第一行\n第二行\t完")
        with sessionmaker(app.extensions["changeflow.engine"])() as session:
            assert unconfirmed_requests(session) == [chains.b]
            assert verify_all(session) == (3, chains.entries + 1, None)

    def test_quotes_in_name_columns_cannot_pass_off_a_rewritten_entry(self, app, chains, pg_only):
        """Quotes in a name column must be escaped as json.dumps escapes them: with plain quotes,
        a rewritten entry would rebuild to exactly the bytes of the original (its fields shaped
        like the rest of an entry), and the database would confirm what Python refuses."""
        from workflow.history import _UNCONFIRMED_ENTRIES, _intact

        engine = app.extensions["changeflow.engine"]
        hashed, entry_id, stored = insert_rewritten_entry(engine, chains)
        plainly_quoted = hashed.decode()
        with sessionmaker(engine)() as session:
            # The database rebuilds the rewritten entry as Python does, escaped, not the
            # original's bytes that plain quotes would give ...
            rebuilt = rebuilt_in_database(session, entry_id)
            assert rebuilt != plainly_quoted
            assert rebuilt.encode() == entry_bytes(GENESIS, session.get(HistoryEntry, entry_id))
        with engine.connect() as conn:
            # ... so the database does not confirm it,
            assert chains.c in conn.exec_driver_sql(_UNCONFIRMED_ENTRIES).scalars().all()
        # and Python refuses it.
        assert not _intact(stored)

    @probe_settings
    @probe_values
    def test_the_database_rebuilds_exactly_the_hashed_bytes(
        self, app, chains, pg_only, at, actor, comment, fields, from_state, actor_id
    ):
        """Whatever the text, PostgreSQL rebuilds exactly the hashed bytes, unless a control
        character is in a text column: then the bytes differ (and Python decides)."""
        engine = app.extensions["changeflow.engine"]
        values = (at, actor, comment, fields, from_state, actor_id)
        with probe_entry(engine, chains, *values) as entry_id:
            with sessionmaker(engine)() as session:
                rebuilt = rebuilt_in_database(session, entry_id)
            expected = stored_bytes(engine, entry_id).decode()
        controls = any(ord(c) < 0x20 for c in actor[:80] + comment)
        assert (rebuilt == expected) == (not controls)


def _rebuilt_one() -> str:
    from workflow.history import _SQLITE_REBUILT

    return f"SELECT {_SQLITE_REBUILT} FROM history_entries h WHERE h.id = :i"


def rebuilt_in_sqlite(session, entry_id: int) -> bytes:
    """One stored entry's bytes as SQLite rebuilds them for Python to hash."""
    return session.execute(text(_rebuilt_one()), {"i": entry_id}).scalar_one()


def _rebuilt_by_checking_driver(path: str, entry_id: int) -> bytes:
    from workflow.history import checking_driver

    connection = checking_driver().connect(path)
    try:
        return connection.execute(_rebuilt_one(), {"i": entry_id}).fetchone()[0]
    finally:
        connection.close()


def rebuilt_by_checking_processes(engine, entry_id: int) -> bytes:
    """One stored entry's bytes as the checking processes rebuild them: in a forked process,
    with their driver (never beside this process's own sqlite3 on the same file)."""
    with multiprocessing.get_context("fork").Pool(1) as pool:
        return pool.apply(_rebuilt_by_checking_driver, (engine.url.database, entry_id))


def checked_in_sqlite(app):
    from workflow.history import _checked_in_sqlite

    with sessionmaker(app.extensions["changeflow.engine"])() as session:
        return _checked_in_sqlite(session)


@pytest.fixture
def in_processes(monkeypatch):
    """SQLite's check split over two forked processes even for a handful of requests."""
    import workflow.history

    monkeypatch.setattr(workflow.history, "PARALLEL_FROM_REQUESTS", 1)
    monkeypatch.setattr(workflow.history, "_process_count", lambda: 2)
    forks = []
    real = workflow.history.multiprocessing.get_context

    def counting(method):
        forks.append(method)
        return real(method)

    monkeypatch.setattr(workflow.history.multiprocessing, "get_context", counting)
    return forks


class TestConfirmedBySqlite:
    """On SQLite, SQLite rebuilds every entry's bytes and Python hashes them; only the chains
    that does not confirm are walked by the authority. It must confirm intact chains and never
    confirm one the authority would refuse (every tampering test above runs through it)."""

    def test_intact_chains_are_confirmed_without_the_walk(self, app, chains, sqlite_only):
        assert checked_in_sqlite(app) == ([], 3, chains.entries)

    def test_every_stored_entry_is_rebuilt_byte_for_byte(self, app, chains, sqlite_only):
        entries = [e for r in (chains.a, chains.b, chains.c) for e in stored_entries(app, r)]
        assert len(entries) == chains.entries
        with sessionmaker(app.extensions["changeflow.engine"])() as session:
            for entry in entries:
                assert rebuilt_in_sqlite(session, entry.id) == entry_bytes(entry.prev_hash, entry)

    @pytest.mark.parametrize(
        "comment", ['科室说"打印机"在 C:\\printers\\ 下', "第一行\n第二行\t完\x01\x1f"]
    )
    def test_quotes_control_characters_and_chinese_are_confirmed(
        self, app, chains, sqlite_only, comment
    ):
        change_severity_with_comment(app, chains, comment)
        assert checked_in_sqlite(app) == ([], 3, chains.entries + 1)
        with sessionmaker(app.extensions["changeflow.engine"])() as session:
            assert verify_all(session) == (3, chains.entries + 1, None)

    def test_quotes_in_name_columns_cannot_pass_off_a_rewritten_entry(
        self, app, chains, sqlite_only
    ):
        """As on PostgreSQL: plain quotes would rebuild a rewritten entry (its fields shaped
        like the rest of an entry) to exactly the original's bytes."""
        from workflow.history import _intact

        engine = app.extensions["changeflow.engine"]
        hashed, entry_id, stored = insert_rewritten_entry(engine, chains)
        with sessionmaker(engine)() as session:
            rebuilt = rebuilt_in_sqlite(session, entry_id)
            assert rebuilt != hashed
            assert rebuilt == entry_bytes(GENESIS, session.get(HistoryEntry, entry_id))
        assert chains.c in checked_in_sqlite(app)[0]
        assert not _intact(stored)

    @pytest.mark.parametrize(
        ("column", "chain"),
        [
            ("comment", "a"),
            ("actor_name", "b"),
            ("at", "b"),
            ("prev_hash", "b"),
            ("definition_hash", "b"),
        ],
    )
    def test_a_blob_where_text_belongs_is_named_as_an_edit(
        self, app, chains, tamper, sqlite_only, column, chain
    ):
        """SQLite keeps a BLOB in any column; its bytes may equal the text that was hashed.
        Neither SQLite's check nor the walk may take it for that text."""
        request_id = getattr(chains, chain)
        assert tamper(
            f"UPDATE history_entries SET {column} = CAST({column} AS BLOB)"
            " WHERE request_id = :r AND seq = 3",
            r=request_id,
        )
        checked = checked_in_sqlite(app)
        assert checked is None or request_id in checked[0]
        problem = first_problem(app)
        assert (problem.request_id, problem.seq) == (request_id, 3)

    def test_a_time_without_microseconds_is_confirmed(self, app, chains, tamper, sqlite_only):
        """SQLite may hold a whole second as 'YYYY-MM-DD HH:MM:SS'; hashed, it has .000000."""
        entry = stored_entries(app, chains.c)[1]
        at = entry.at.replace(microsecond=0)
        entry.at = at
        digest = hashlib.sha256(entry_bytes(entry.prev_hash, entry)).hexdigest()
        assert tamper(
            "UPDATE history_entries SET at = :at, entry_hash = :h WHERE id = :i",
            at=at.strftime("%Y-%m-%d %H:%M:%S"),
            h=digest,
            i=entry.id,
        )
        assert tamper("UPDATE requests SET head_hash = :h WHERE id = :r", h=digest, r=chains.c)
        assert checked_in_sqlite(app) == ([], 3, chains.entries)
        assert first_problem(app) is None

    @probe_settings
    @probe_values
    def test_sqlite_rebuilds_exactly_the_hashed_bytes(
        self, app, chains, sqlite_only, at, actor, comment, fields, from_state, actor_id
    ):
        """Whatever the text, control characters included, SQLite rebuilds the hashed bytes:
        the app's SQLite in process and the checking processes' own."""
        engine = app.extensions["changeflow.engine"]
        values = (at, actor, comment, fields, from_state, actor_id)
        with probe_entry(engine, chains, *values) as entry_id:
            with sessionmaker(engine)() as session:
                rebuilt = rebuilt_in_sqlite(session, entry_id)
            assert rebuilt == stored_bytes(engine, entry_id)
            assert rebuilt_by_checking_processes(engine, entry_id) == rebuilt

    def test_ids_that_do_not_rise_with_seq_are_not_confirmed(
        self, app, chains, tamper, sqlite_only
    ):
        """SQLite reads entries in seq order; the walk reads them in id order and would find
        #3 where #2 belongs, so SQLite's check must not pass the chain either."""
        assert tamper(
            "UPDATE history_entries SET id = (SELECT max(id) + 1 FROM history_entries)"
            " WHERE request_id = :r AND seq = 2",
            r=chains.b,
        )
        assert checked_in_sqlite(app)[0] == [chains.b]
        problem = first_problem(app)
        assert (problem.request_id, problem.seq) == (chains.b, 2)


class TestCheckedInProcesses:
    """A large SQLite database is checked by forked processes over ranges of request ids; the
    answer must be the one a single process gives, tampering included."""

    def test_intact_chains_give_the_same_counts(self, app, chains, sqlite_only, in_processes):
        assert checked_in_sqlite(app) == ([], 3, chains.entries)
        assert in_processes == ["fork"]

    def test_the_processes_read_with_sqlean_when_it_is_installed(self, monkeypatch):
        """sqlean.py is a dependency (its SQLite rebuilds faster, docs/BENCHMARKS.md); without
        it the processes fall back to the standard library's sqlite3."""
        import builtins
        import sqlite3

        from workflow.history import checking_driver

        assert checking_driver().__name__ == "sqlean"
        real_import = builtins.__import__

        def without_sqlean(name, *args, **kwargs):
            if name == "sqlean":
                raise ImportError(name)
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", without_sqlean)
        assert checking_driver() is sqlite3

    @pytest.mark.parametrize(
        ("sql", "chain", "seq"),
        [
            ("UPDATE history_entries SET comment = 'x' WHERE request_id = :r AND seq = 3", "b", 3),
            ("DELETE FROM history_entries WHERE request_id = :r AND seq = 2", "a", 2),
            (
                "UPDATE history_entries SET actor_name = CAST(actor_name AS BLOB)"
                " WHERE request_id = :r",
                "c",
                1,
            ),
        ],
    )
    def test_tampering_is_named_as_one_process_names_it(
        self, app, runner, chains, tamper, sqlite_only, in_processes, sql, chain, seq
    ):
        request_id = getattr(chains, chain)
        assert tamper(sql, r=request_id)
        assert_fails_naming(runner, request_id, seq)
        problem = first_problem(app)
        assert (problem.request_id, problem.seq) == (request_id, seq)
        assert in_processes

    def test_no_fork_while_other_threads_run(
        self, app, chains, sqlite_only, in_processes, monkeypatch
    ):
        """A thread holding a lock at the fork would leave it locked in the child for good."""
        import workflow.history

        monkeypatch.setattr(workflow.history.threading, "active_count", lambda: 2)
        assert checked_in_sqlite(app) == ([], 3, chains.entries)
        assert in_processes == []

    @given(
        first=st.integers(1, 10_000),
        span=st.integers(0, 10_000),
        parts=st.integers(1, 40),
    )
    def test_ranges_cover_every_id_once_in_order(self, first, span, parts):
        from workflow.history import _ranges

        last = first + span
        ranges = _ranges(first, last, parts)
        assert 1 <= len(ranges) <= parts
        assert ranges[0][0] == first and ranges[-1][1] == last
        assert all(low <= high for low, high in ranges)
        assert all(ranges[i][1] + 1 == ranges[i + 1][0] for i in range(len(ranges) - 1))


class TestWalkedInPython:
    """The Python walk is the authority: on SQLite it checks every entry, on PostgreSQL those
    the database could not confirm."""

    def test_quotes_control_characters_and_chinese_verify(self, app, chains):
        change_severity_with_comment(app, chains, '第一行\n"打印机" C:\\printers\t完')
        with sessionmaker(app.extensions["changeflow.engine"])() as session:
            assert verify_all(session) == (3, chains.entries + 1, None)

    def test_fields_stored_in_another_json_spelling_still_verify(self, app, chains, tamper):
        # The same value in other text, as an older database (JSONB, json.dumps) kept it.
        value = stored_entries(app, chains.b)[0].fields
        other = json.dumps(dict(reversed(list(value.items()))), ensure_ascii=True, indent=1)
        assert other != canonical_json(value).decode()
        assert tamper(
            "UPDATE history_entries SET fields = :f WHERE request_id = :r AND seq = 1",
            f=other,
            r=chains.b,
        )
        with sessionmaker(app.extensions["changeflow.engine"])() as session:
            assert verify_all(session) == (3, chains.entries, None)

    def test_walk_chains_names_each_request_with_its_entries(self, app, chains):
        from workflow.history import walk_chains

        with sessionmaker(app.extensions["changeflow.engine"])() as session:
            walked = list(walk_chains(session))
            assert walked == [(chains.a, 4, None), (chains.b, 5, None), (chains.c, 2, None)]
            assert list(walk_chains(session, [chains.b])) == [(chains.b, 5, None)]
            assert list(walk_chains(session, [])) == []
