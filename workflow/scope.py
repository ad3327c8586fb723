"""Which of an actor's roles apply to a given request or contract (SPEC §5 scope rules)."""

from __future__ import annotations

from models.people import VENDOR_ROLES


def assignment_covers(assignment, *, department_id, contract_id, vendor_id) -> bool:
    """Whether one role assignment's scope covers a record with these owners."""
    if assignment.role == "dept_user" and assignment.department_id is None:
        return False
    if assignment.role in VENDOR_ROLES and not (assignment.vendor_id or assignment.contract_id):
        return False
    if assignment.department_id is not None and assignment.department_id != department_id:
        return False
    if assignment.contract_id is not None and assignment.contract_id != contract_id:
        return False
    return not (assignment.vendor_id is not None and assignment.vendor_id != vendor_id)


def roles_for_request(actor, request) -> set[str]:
    """Roles of the actor whose scope covers the request (none when inactive or locked)."""
    if actor is None or not actor.is_active or actor.locked_at is not None:
        return set()
    vendor_id = request.contract.vendor_id if request.contract is not None else None
    return {
        a.role
        for a in actor.roles
        if assignment_covers(
            a,
            department_id=request.department_id,
            contract_id=request.contract_id,
            vendor_id=vendor_id,
        )
    }


def roles_for_contract(actor, contract, department_id=None) -> set[str]:
    """Roles of the actor that cover a new record under ``contract`` (and department)."""
    if actor is None or not actor.is_active or actor.locked_at is not None:
        return set()
    return {
        a.role
        for a in actor.roles
        if (a.role != "dept_user" or a.department_id == department_id)
        and assignment_covers(
            a,
            department_id=department_id if a.department_id is not None else None,
            contract_id=contract.id,
            vendor_id=contract.vendor_id,
        )
    }


def can_see_request(actor, request) -> bool:
    """Whether the actor may read the request at all (any covering role, or the auditor)."""
    if actor is None:
        return False
    if "auditor" in actor.role_names():
        return True
    # sys_admin and sec_admin manage accounts and contracts, not requests (三权分立).
    return bool(roles_for_request(actor, request) - {"sys_admin", "sec_admin"})


def _granting_roles(actor) -> list:
    """The actor's role assignments that let them see requests (the auditor aside)."""
    granting = []
    for a in actor.roles:
        if a.role == "dept_user" and a.department_id is None:
            continue
        if a.role in VENDOR_ROLES and not (a.vendor_id or a.contract_id):
            continue
        if a.role in ("sys_admin", "sec_admin"):
            continue
        granting.append(a)
    return granting


def request_scope_clause(actor, columns=None):
    """A SQL condition selecting the requests the actor may see (false when none).
    ``columns``: where a request's department_id and contract_id are read, Request's own
    unless given (the title search table's, for a search read from it alone)."""
    from sqlalchemy import and_, false, or_, select, true

    from models import Contract, Request

    request = Request if columns is None else columns

    if actor is None or not actor.is_active or actor.locked_at is not None:
        return false()
    if "auditor" in actor.role_names():
        return true()
    clauses = []
    for a in _granting_roles(actor):
        parts = []
        if a.department_id is not None:
            parts.append(request.department_id == a.department_id)
        if a.contract_id is not None:
            parts.append(request.contract_id == a.contract_id)
        if a.vendor_id is not None:
            parts.append(
                request.contract_id.in_(
                    select(Contract.id).where(Contract.vendor_id == a.vendor_id)
                )
            )
        clauses.append(and_(*parts) if parts else true())
    return or_(*clauses) if clauses else false()


def scope_departments(actor) -> set[int] | None:
    """The departments every request the actor may see belongs to, or None when the actor's
    view is not confined to departments (a department user's is; IT's and a vendor's are not).
    A narrowing a query may add next to request_scope_clause, never a replacement for it."""
    if actor is None or "auditor" in actor.role_names():
        return None
    granting = _granting_roles(actor)
    if not granting or any(a.department_id is None for a in granting):
        return None
    return {a.department_id for a in granting}


def sees_whole_departments(actor, departments: set[int]) -> bool:
    """Whether the actor may see every request of each of these departments: request_scope_clause
    then selects nothing narrower inside them than the departments themselves do."""
    if actor is None or not actor.is_active or actor.locked_at is not None:
        return False
    if "auditor" in actor.role_names():
        return True
    whole = set()
    for a in _granting_roles(actor):
        if a.contract_id is not None or a.vendor_id is not None:
            continue
        if a.department_id is None:
            return True  # a role that sees every request
        whole.add(a.department_id)
    return departments <= whole


def contract_scope_clause(actor):
    """A SQL condition selecting the contracts the actor may see."""
    from sqlalchemy import false, or_, true

    from models import Contract

    if actor is None or not actor.is_active or actor.locked_at is not None:
        return false()
    clauses = []
    for a in actor.roles:
        if a.role in VENDOR_ROLES:
            if a.contract_id is not None:
                clauses.append(Contract.id == a.contract_id)
            elif a.vendor_id is not None:
                clauses.append(Contract.vendor_id == a.vendor_id)
        else:
            # Hospital staff and administrators see every contract of the hospital.
            clauses.append(true())
    return or_(*clauses) if clauses else false()
