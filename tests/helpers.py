"""Shared test helpers: create requests as the right user and walk them to a state by real fires.

Everything here goes through the public engine functions (``create_request``, ``fire``,
``add_attachment``), so reaching a state is itself a test of the path that leads there.
"""

from __future__ import annotations

import copy
import hashlib
import io
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select

from models import Contract, HistoryEntry, Request
from workflow.accounts import create_user
from workflow.attachments import add_attachment
from workflow.engine import create_request, fire

CHANGE_SQL = "ALTER TABLE patient ADD COLUMN follow_up_note VARCHAR(200);"
ROLLBACK_SQL = "ALTER TABLE patient DROP COLUMN follow_up_note;"

# Users the standard world does not have: one person holding two roles, for self-approval.
EXTRA_USERS = {
    # username → (roles, department code, vendor code)
    "it_staff_signer": (["it_staff", "it_signer"], None, None),
    "it_staff_dba": (["it_staff", "it_dba"], None, None),
}

# Who raises a request of each kind by default.
DEFAULT_CREATOR = {
    "requirement": "dept_user",
    "upgrade": "vendor_engineer",
    "schema_change": "vendor_engineer",
    "incident": "dept_user",
}


def creation_fields(kind: str) -> dict:
    """Valid ``fields`` for creating a request of ``kind``."""
    return {
        "requirement": {"req_type": "new_feature", "module": "Follow-up", "time_requirement": ""},
        "upgrade": {"from_version": "1.0.0", "to_version": "1.1.0", "impact": "Whole system"},
        "schema_change": {
            "database_name": "followup",
            "dialect": "mysql",
            "change_sql": CHANGE_SQL,
            "rollback_sql": ROLLBACK_SQL,
            "reason": "Store a note per follow-up.",
        },
        "incident": {"severity": "L2", "location": "Ward 3", "reported_via": "phone"},
    }[kind]


def estimate_input(days: str = "1") -> dict:
    """Valid input of the requirement ``estimate`` event."""
    return {
        "estimate_days": days,
        "analysis": "Add a field to the form.",
        "modification_plan": "One new column and a form field.",
        "promised_date": "2026-09-01",
    }


# Valid input (fields, comment) for every event, per kind.
EVENT_INPUT: dict[str, dict[str, tuple[dict, str]]] = {
    "requirement": {
        "submit": ({}, ""),
        "return_to_submitter": ({}, "Please describe the report columns."),
        "triage": ({"priority": "high", "policy_interface": False}, ""),
        "reject": ({}, "Out of scope of the contract."),
        "estimate": (estimate_input(), ""),
        "it_confirm": ({}, ""),
        "vendor_confirm": ({}, ""),
        "record_agreement": ({"paid_days": "2", "fee_fen": 200000}, ""),
        "start_development": ({}, ""),
        "deliver": ({"delivery_note": "Delivered as build 42."}, ""),
        "confirm_actual_it": ({}, ""),
        "confirm_actual_vendor": ({}, ""),
        "dept_accept": ({}, ""),
        "dept_reject": ({}, "The new field is not shown on the print form."),
        "it_accept": ({}, ""),
        "close": ({}, ""),
        "cancel": ({}, "No longer needed."),
    },
    "upgrade": {
        "submit_for_review": ({}, ""),
        "request_changes": ({}, "The test report misses the interface tests."),
        "override_latest_release": ({}, "1.1.0 breaks the lab interface; 1.0.5 is agreed."),
        "sign": ({}, ""),
        "reject": ({}, "Not the latest release."),
        "schedule": ({"window_start": "2026-07-01T22:00:00+08:00"}, ""),
        "deploy": ({"deployed_version": "1.1.0"}, ""),
        "verify": ({}, ""),
        "close": ({}, ""),
        "roll_back": ({}, "Printing broke after the upgrade."),
        "withdraw": ({}, "Postponed."),
    },
    "schema_change": {
        "submit_for_review": ({}, ""),
        "request_changes": ({}, "Add an index as well."),
        "approve": ({}, ""),
        "reject": ({}, "Not needed."),
        "execute": (
            {
                "executed_sql_sha256": hashlib.sha256(CHANGE_SQL.encode()).hexdigest(),
                "backup_reference": "BK-2026-07-01",
                "result": "success",
            },
            "",
        ),
        "verify": ({}, ""),
        "close": ({}, ""),
        "roll_back": (
            {"rollback_run_sha256": hashlib.sha256(ROLLBACK_SQL.encode()).hexdigest()},
            "The application failed to start.",
        ),
        "withdraw": ({}, "Not needed any more."),
        "revise": ({"change_sql": CHANGE_SQL + "\n-- reviewed", "rollback_sql": ROLLBACK_SQL}, ""),
    },
    "incident": {
        "acknowledge": ({}, ""),
        "start_work": ({}, ""),
        "arrive_on_site": ({}, ""),
        "restore_service": ({}, "Switched the ward to the standby server."),
        "wait_for_hospital": ({}, "Waiting for the ward to reproduce it."),
        "resume": ({}, ""),
        "resolve": ({"resolution": "Restarted the print service.", "root_cause": "Spooler"}, ""),
        "confirm_fixed": ({"satisfaction": 95}, ""),
        "reopen": ({}, "It happened again."),
        "change_severity": ({"severity": "L1"}, "The whole ward is affected."),
        "cancel": ({}, "Duplicate report."),
    },
}

SUBMITTER = "@submitter"  # stands for whoever raised the request


@dataclass(frozen=True)
class Step:
    """One real action on the way to a state: a fire, or attaching a document first."""

    event: str
    actor: str
    fields: dict | None = None  # None: the event's default valid input
    attach: tuple[str, ...] = ()  # document kinds the actor attaches before firing


# The path from the initial state to every state of every workflow.
PATHS: dict[str, dict[str, list[Step]]] = {}


def _paths() -> None:
    r_submit = [Step("submit", SUBMITTER)]
    r_triaged = [*r_submit, Step("triage", "it_staff")]
    r_estimated = [*r_triaged, Step("estimate", "vendor_engineer")]
    r_confirmed = [
        *r_estimated,
        Step("it_confirm", "it_signer"),
        Step("vendor_confirm", "vendor_manager"),
    ]
    r_dev = [*r_confirmed, Step("start_development", "vendor_engineer")]
    r_delivered = [*r_dev, Step("deliver", "vendor_engineer")]
    r_dept = [*r_delivered, Step("dept_accept", "dept_user")]
    r_accepted = [*r_dept, Step("it_accept", "it_staff")]
    PATHS["requirement"] = {
        "draft": [],
        "submitted": r_submit,
        "triaged": r_triaged,
        "estimated": r_estimated,
        "it_confirmed": [*r_estimated, Step("it_confirm", "it_signer")],
        "vendor_confirmed": [*r_estimated, Step("vendor_confirm", "vendor_manager")],
        # Needs a contract with a per-request cap below the estimate: see walk_to.
        "awaiting_agreement": [
            *r_triaged,
            Step("estimate", "vendor_engineer", estimate_input("12")),
            Step("it_confirm", "it_signer"),
            Step("vendor_confirm", "vendor_manager"),
        ],
        "confirmed": r_confirmed,
        "in_development": r_dev,
        "delivered": r_delivered,
        "dept_accepted": r_dept,
        "accepted": r_accepted,
        "closed": [*r_accepted, Step("close", "it_staff")],
        "rejected": [*r_submit, Step("reject", "it_staff")],
        "cancelled": [Step("cancel", "dept_user")],
    }

    u_review = [Step("submit_for_review", SUBMITTER, attach=("test_report",))]
    u_signed = [*u_review, Step("sign", "it_signer")]
    u_scheduled = [*u_signed, Step("schedule", "vendor_engineer")]
    u_deployed = [*u_scheduled, Step("deploy", "vendor_engineer")]
    u_verified = [*u_deployed, Step("verify", "it_staff")]
    PATHS["upgrade"] = {
        "draft": [],
        "under_review": u_review,
        "signed": u_signed,
        "scheduled": u_scheduled,
        "deployed": u_deployed,
        "verified": u_verified,
        "closed": [*u_verified, Step("close", "it_staff", attach=("upgrade_report",))],
        "rolled_back": [*u_deployed, Step("roll_back", "vendor_engineer")],
        "rejected": [*u_review, Step("reject", "it_signer")],
        "withdrawn": [Step("withdraw", SUBMITTER)],
    }

    s_review = [Step("submit_for_review", SUBMITTER)]
    s_approved = [*s_review, Step("approve", "it_dba")]
    s_executed = [*s_approved, Step("execute", "vendor_engineer")]
    s_verified = [*s_executed, Step("verify", "it_dba")]
    PATHS["schema_change"] = {
        "draft": [],
        "under_review": s_review,
        "approved": s_approved,
        "executed": s_executed,
        "verified": s_verified,
        "closed": [*s_verified, Step("close", "it_staff")],
        "rolled_back": [*s_executed, Step("roll_back", "it_dba")],
        "rejected": [*s_review, Step("reject", "it_dba")],
        "withdrawn": [Step("withdraw", SUBMITTER)],
    }

    i_ack = [Step("acknowledge", "vendor_engineer")]
    i_progress = [*i_ack, Step("start_work", "vendor_engineer")]
    i_resolved = [*i_progress, Step("resolve", "vendor_engineer")]
    PATHS["incident"] = {
        "reported": [],
        "acknowledged": i_ack,
        "in_progress": i_progress,
        "waiting_hospital": [*i_progress, Step("wait_for_hospital", "vendor_engineer")],
        "resolved": i_resolved,
        "closed": [*i_resolved, Step("confirm_fixed", "dept_user")],
        "cancelled": [Step("cancel", "dept_user")],
    }


_paths()


class Flow:
    """The app, session, catalog and world of one test, with helpers to act in them."""

    def __init__(self, app, db, catalog, world):
        self.app, self.db, self.catalog, self.world = app, db, catalog, world
        self._quota_contract: Contract | None = None

    # ------------------------------------------------------------ people and contracts

    def user(self, name: str):
        """A user of the world, or one of EXTRA_USERS (created on first use)."""
        if name in self.world.users:
            return self.world.users[name]
        roles, dept, vendor = EXTRA_USERS[name]
        user = create_user(self.db, name, None, roles, department=dept, vendor=vendor)
        self.world.users[name] = user
        return user

    def quota_contract(self, cap: str = "10") -> Contract:
        """A second contract of vendor A whose policy caps free work per request at ``cap``."""
        if self._quota_contract is None:
            # Q1 shape: no cumulative pool, the whole request is paid above the cap.
            self._quota_contract = self.policy_contract(
                "C-A-Q",
                "Contract A (per-request cap)",
                per_request_free_max=cap,
                pool=None,
                overflow="whole",
            )
        return self._quota_contract

    def wait_contract(self, working_days: int = 10) -> Contract:
        """A contract of vendor A whose acceptance opens ``working_days`` after delivery (D7)."""
        return self.policy_contract(
            f"C-A-W{working_days}",
            "Contract A (acceptance wait)",
            acceptance_wait_working_days=working_days,
        )

    def policy_contract(self, code: str, name: str, section: str = "quota", **rules) -> Contract:
        """Another 2026 contract of vendor A: contract A's policy with these rules in
        ``section`` (quota unless named)."""
        policy = copy.deepcopy(self.world.contract.policy or {})
        policy.setdefault(section, {}).update(rules)
        contract = Contract(
            code=code,
            name=name,
            vendor_id=self.world.contract.vendor_id,
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
            policy_key=self.world.contract.policy_key,
            policy_hash=self.world.contract.policy_hash,
            policy=policy,
        )
        self.db.add(contract)
        self.db.flush()
        return contract

    # ------------------------------------------------------------ requests

    def create(
        self,
        kind: str,
        creator: str | None = None,
        *,
        contract: Contract | None = None,
        fields: dict | None = None,
        title: str | None = None,
        catalog=None,
        now=None,
    ) -> Request:
        """Create a request of ``kind`` as ``creator`` (the kind's default raiser)."""
        actor = self.user(creator or DEFAULT_CREATOR[kind])
        contract = contract or self.world.contract
        system_id = self.world.system.id if contract.id == self.world.contract.id else None
        if kind == "upgrade" and system_id is None:
            system_id = self._system_for(contract)
        # Department requests belong to cardiology, whoever raises them.
        department = self.world.departments["cardiology"]
        return create_request(
            self.db,
            catalog or self.catalog,
            actor,
            kind=kind,
            contract_id=contract.id,
            system_id=system_id,
            department_id=department.id if kind in ("requirement", "incident") else None,
            title=title or f"Test {kind}",
            description="Created by the test suite.",
            fields=creation_fields(kind) if fields is None else fields,
            now=now,
        )

    def _system_for(self, contract: Contract):
        from models import System

        system = self.db.scalar(select(System).where(System.contract_id == contract.id))
        return system.id if system is not None else None

    def attach(self, request: Request, actor: str, kind: str, content: bytes | None = None):
        """Attach a small document of ``kind`` as ``actor``."""
        return add_attachment(
            self.db,
            request,
            self.user(actor),
            kind=kind,
            filename=f"{kind}.pdf",
            stream=io.BytesIO(content or f"%PDF-1.4 {kind} {request.id}".encode()),
            storage_dir=self.app.config["ATTACHMENTS_DIR"],
            max_bytes=self.app.config["MAX_UPLOAD_BYTES"],
        )

    def fire(
        self,
        request: Request,
        event: str,
        actor: str,
        fields: dict | None = None,
        comment: str | None = None,
        expected_version: int | None = None,
        now=None,
    ):
        """Fire ``event`` as ``actor`` with the event's default valid input unless given."""
        # Unknown events (for invalid_transition checks) get empty input.
        default_fields, default_comment = EVENT_INPUT[request.kind].get(event, ({}, ""))
        return fire(
            self.db,
            request,
            event,
            self.user(actor),
            copy.deepcopy(default_fields) if fields is None else fields,
            request.version if expected_version is None else expected_version,
            comment=default_comment if comment is None else comment,
            now=now,
        )

    def run(self, request: Request, steps: list[Step], submitter: str) -> Request:
        """Perform ``steps`` on the request (``@submitter`` is the request's raiser)."""
        for step in steps:
            actor = submitter if step.actor == SUBMITTER else step.actor
            for kind in step.attach:
                self.attach(request, actor, kind)
            self.fire(request, step.event, actor, step.fields)
            self.db.flush()
        return request

    def walk_to(
        self,
        kind: str,
        state: str,
        creator: str | None = None,
        *,
        contract: Contract | None = None,
    ) -> Request:
        """A new request of ``kind`` brought to ``state`` by real fires."""
        creator = creator or DEFAULT_CREATOR[kind]
        if kind == "requirement" and state == "awaiting_agreement" and contract is None:
            contract = self.quota_contract()
        request = self.create(kind, creator, contract=contract)
        self.run(request, PATHS[kind][state], creator)
        assert request.state == state, f"walked to {request.state}, wanted {state}"
        return request

    # ------------------------------------------------------------ inspection

    def history_count(self, request: Request) -> int:
        """Entries in the database for the request (after flushing pending changes)."""
        self.db.flush()
        return self.db.scalar(
            select(func.count())
            .select_from(HistoryEntry)
            .where(HistoryEntry.request_id == request.id)
        )

    def history(self, request: Request) -> list[HistoryEntry]:
        """The request's entries in chain order."""
        self.db.flush()
        return list(
            self.db.scalars(
                select(HistoryEntry)
                .where(HistoryEntry.request_id == request.id)
                .order_by(HistoryEntry.seq)
            )
        )

    def snapshot(self, request: Request) -> dict:
        """What a refused fire must leave untouched, in memory and in the database."""
        self.db.flush()
        row = self.db.execute(
            select(Request.state, Request.version, Request.head_hash, Request.data).where(
                Request.id == request.id
            )
        ).one()
        return {
            "state": request.state,
            "version": request.version,
            "data": copy.deepcopy(request.data),
            "head_hash": request.head_hash,
            "db_state": row.state,
            "db_version": row.version,
            "db_head_hash": row.head_hash,
            "db_data": copy.deepcopy(row.data),
            "history": self.history_count(request),
        }
