"""Read-side queries, always filtered by what the actor may see."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from models import Attachment, Contract, Department, HistoryEntry, Request, System
from workflow.errors import NotFound
from workflow.localtime import day_start_utc
from workflow.scope import can_see_request, contract_scope_clause, request_scope_clause

SORTS = {
    "id": Request.id.asc(),
    "-id": Request.id.desc(),
    "created_at": Request.created_at.asc(),
    "-created_at": Request.created_at.desc(),
    "updated_at": Request.updated_at.asc(),
    "-updated_at": Request.updated_at.desc(),
    "title": Request.title.asc(),
    "-title": Request.title.desc(),
}


def get_request(session: Session, actor, request_id: int, *, for_update: bool = False) -> Request:
    """A request the actor may see; raises NotFound (also when it exists out of scope)."""
    stmt = select(Request).where(Request.id == request_id)
    if for_update:
        stmt = stmt.execution_options(populate_existing=True)
    request = session.scalar(stmt)
    if request is None or not can_see_request(actor, request):
        raise NotFound(
            "There is no such request, or it is not yours to see.", {"request_id": request_id}
        )
    return request


def _list_conditions(actor, filters: dict) -> list:
    conditions = [request_scope_clause(actor)]
    for key in ("kind", "state", "contract_id", "system_id", "department_id"):
        if filters.get(key) is not None:
            conditions.append(getattr(Request, key) == filters[key])
    if filters.get("q"):
        needle = filters["q"].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(Request.title.ilike(f"%{needle}%", escape="\\"))
    if filters.get("created_from"):
        conditions.append(Request.created_at >= day_start_utc(filters["created_from"]))
    if filters.get("created_to"):
        end = day_start_utc(filters["created_to"] + timedelta(days=1))
        conditions.append(Request.created_at < end)
    return conditions


def list_requests(session: Session, actor, filters: dict) -> tuple[list[Request], int]:
    """One page of visible requests matching ``filters``; returns (items, total)."""
    conditions = _list_conditions(actor, filters)
    total = session.scalar(select(func.count()).select_from(Request).where(*conditions))
    page, per_page = filters.get("page", 1), filters.get("per_page", 25)
    items = session.scalars(
        select(Request)
        .options(selectinload(Request.submitter), selectinload(Request.assignee))
        .where(*conditions)
        .order_by(SORTS[filters.get("sort", "-id")], Request.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return list(items), int(total or 0)


def iter_requests(session: Session, actor, filters: dict, batch: int = 1000) -> Iterator[Request]:
    """Every visible request matching ``filters`` (no paging), fetched in batches."""
    stmt = (
        select(Request)
        .options(
            selectinload(Request.submitter),
            selectinload(Request.assignee),
            selectinload(Request.system),
        )
        .where(*_list_conditions(actor, filters))
        .order_by(SORTS[filters.get("sort", "-id")], Request.id.desc())
        .execution_options(yield_per=batch)
    )
    yield from session.scalars(stmt)


def history_of(session: Session, request: Request) -> list[HistoryEntry]:
    """The request's chain in order."""
    return list(
        session.scalars(
            select(HistoryEntry)
            .where(HistoryEntry.request_id == request.id)
            .order_by(HistoryEntry.seq)
        )
    )


def visible_contracts(session: Session, actor) -> list[Contract]:
    """Contracts the actor may see."""
    return list(
        session.scalars(select(Contract).where(contract_scope_clause(actor)).order_by(Contract.id))
    )


def visible_systems(session: Session, actor) -> list[System]:
    """Systems under the contracts the actor may see."""
    contract_ids = select(Contract.id).where(contract_scope_clause(actor))
    return list(
        session.scalars(
            select(System).where(System.contract_id.in_(contract_ids)).order_by(System.id)
        )
    )


def get_attachment(session: Session, actor, attachment_id: int) -> Attachment:
    """An attachment of a request the actor may see; raises NotFound."""
    attachment = session.get(Attachment, attachment_id)
    if attachment is None or not can_see_request(actor, attachment.request):
        raise NotFound(
            "There is no such document, or it is not yours to see.",
            {"attachment_id": attachment_id},
        )
    return attachment


def visible_departments(session: Session, actor) -> list[Department]:
    """Departments the actor's requests can belong to: their own for department users."""
    own = {
        a.department_id
        for a in actor.roles
        if a.role == "dept_user" and a.department_id is not None
    }
    others = actor.role_names() - {"dept_user"}
    stmt = select(Department).order_by(Department.code)
    if own and not others:
        stmt = stmt.where(Department.id.in_(own))
    return list(session.scalars(stmt))


def get_contract(session: Session, actor, contract_id: int) -> Contract:
    """A contract the actor may see; raises NotFound (also when it exists out of scope)."""
    contract = session.scalar(
        select(Contract).where(Contract.id == contract_id, contract_scope_clause(actor))
    )
    if contract is None:
        raise NotFound(
            "There is no such contract, or it is not yours to see.", {"contract_id": contract_id}
        )
    return contract
