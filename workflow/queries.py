"""Read-side queries, always filtered by what the actor may see."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy import String, bindparam, column, func, literal, select, table, true
from sqlalchemy.orm import (
    Session,
    defaultload,
    joinedload,
    lazyload,
    selectinload,
    with_expression,
)
from sqlalchemy.orm.attributes import instance_dict

from models import (
    Attachment,
    Contract,
    DefinitionVersion,
    Department,
    HistoryEntry,
    Request,
    System,
    User,
)
from workflow.errors import NotFound
from workflow.localtime import day_start_utc
from workflow.scope import (
    can_see_request,
    contract_scope_clause,
    request_scope_clause,
    scope_departments,
    sees_whole_departments,
)

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


# One round trip for what every caller shows: the request with its documents (a request has a
# handful), the names of who raised it and who has it and its definition's hash. Each joined
# entity costs the worker more than the columns it carries (its row processors are built anew
# on every execution), so the names and the hash come as three scalar columns, and neither the
# definition version row nor the contract's vendor is joined. Built once: building the options
# costs as much as running the cached statement.
def _username(user_id):
    return select(User.username).where(User.id == user_id).scalar_subquery()


_ONE_REQUEST = (
    select(Request)
    .where(Request.id == bindparam("request_id"))
    .options(
        joinedload(Request.attachments),
        lazyload(Request.definition_version),
        defaultload(Request.contract).lazyload(Contract.vendor),
        with_expression(Request.submitter_name, _username(Request.submitter_id)),
        with_expression(Request.assignee_name, _username(Request.assignee_id)),
        with_expression(
            Request.definition_hash,
            select(DefinitionVersion.content_hash)
            .where(DefinitionVersion.id == Request.definition_version_id)
            .scalar_subquery(),
        ),
    )
)


def username_of(request: Request, relation: str) -> str | None:
    """The username of a request's ``submitter`` or ``assignee`` (None without one): the loaded
    relationship if set since, else the name the one-request load brought, else a lazy load."""
    loaded = instance_dict(request)  # what the ORM holds, without loading anything
    if relation in loaded:
        person = loaded[relation]
    else:
        name = getattr(request, f"{relation}_name")
        if name is not None:
            return name
        person = getattr(request, relation)
    return person.username if person is not None else None


def definition_hash(request: Request) -> str:
    """The content hash of the definition version a request follows."""
    return request.definition_hash or request.definition_version.content_hash


def get_request(session: Session, actor, request_id: int, *, for_update: bool = False) -> Request:
    """A request the actor may see; raises NotFound (also when it exists out of scope)."""
    stmt = _ONE_REQUEST
    if for_update:
        stmt = stmt.execution_options(populate_existing=True)
    request = session.scalars(stmt, {"request_id": request_id}).unique().first()
    if request is None or not can_see_request(actor, request):
        raise NotFound(
            "There is no such request, or it is not yours to see.", {"request_id": request_id}
        )
    return request


# Lists count matches only up to this many: counting every row of a million-row table would
# cost more than the page itself, and nobody pages past a thousand results (they filter).
COUNT_LIMIT = 1000


# Title search tables made by migrations outside the mapped schema: PostgreSQL's title table
# with its trigram indexes (0009), SQLite's FTS5 trigram table (0005).
_TITLE_SEARCH = table(
    "requests_title_search",
    column("request_id"),
    column("department_id"),
    column("contract_id"),
    column("title"),
)
_TITLE_FTS = table("requests_title_fts", column("rowid"), column("title"))


def _like_escaped(needle: str) -> str:
    return needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_pattern(needle: str):
    # The pattern goes into the SQL text as a quoted literal: a prepared statement's generic
    # plan cannot see the pattern and scans the whole table instead of using the index.
    return literal(f"%{_like_escaped(needle)}%", String, literal_execute=True)


def _title_matches(needle: str, departments: set[int] | None):
    """PostgreSQL: the ids in the title table whose title contains ``needle``, confined to
    ``departments`` when given."""
    titles = _TITLE_SEARCH
    matching = select(titles.c.request_id).where(
        titles.c.title.ilike(_like_pattern(needle), escape="\\")
    )
    if departments:
        matching = matching.where(titles.c.department_id.in_(sorted(departments)))
    return matching


def title_contains(session: Session, needle: str, departments: set[int] | None = None):
    """A condition: the title contains ``needle`` (case-insensitive), served by a trigram index
    (PostgreSQL: pg_trgm on the requests_title_search table of migration 0009; SQLite: the FTS5
    trigram table of migration 0005). ``departments``: the requests are known to belong to one
    of these, which lets PostgreSQL read the department's part of the index only."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return Request.id.in_(_title_matches(needle, departments))
    if dialect != "sqlite" or len(needle) < 3:
        # SQLite's trigram table finds nothing for fewer than three characters: scan for those.
        return Request.title.ilike(_like_pattern(needle), escape="\\")
    return Request.id.in_(select(_TITLE_FTS.c.rowid).where(_fts_like(needle)))


def _fts_like(needle: str):
    """SQLite: the FTS5 trigram table's condition for titles containing ``needle`` (three
    characters or more)."""
    escaped = _like_escaped(needle)
    # FTS5 uses its index for LIKE only without an ESCAPE clause; a needle with a wildcard
    # character in it is matched literally by the (slower) escaped form.
    if escaped == needle:
        return _TITLE_FTS.c.title.like(f"%{needle}%")
    return _TITLE_FTS.c.title.like(f"%{escaped}%", escape="\\")


def _search_departments(actor, filters: dict) -> set[int] | None:
    """The departments a search's matches must belong to (its filter, or the actor's scope)."""
    if filters.get("department_id") is not None:
        return {filters["department_id"]}
    return scope_departments(actor)


def _list_conditions(session: Session, actor, filters: dict) -> list:
    return _with_title(session, actor, filters, _conditions_but_title(actor, filters))


def _with_title(session: Session, actor, filters: dict, conditions: list) -> list:
    """``conditions`` and the list's title search, if it has one."""
    if not filters.get("q"):
        return conditions
    departments = _search_departments(actor, filters)
    return [*conditions, title_contains(session, filters["q"], departments)]


def _conditions_but_title(actor, filters: dict) -> list:
    """A list's conditions without its title search: scope, filters and dates."""
    conditions = [request_scope_clause(actor)]
    for key in ("kind", "state", "contract_id", "system_id", "department_id"):
        if filters.get(key) is not None:
            conditions.append(getattr(Request, key) == filters[key])
    if filters.get("created_from"):
        conditions.append(Request.created_at >= day_start_utc(filters["created_from"]))
    if filters.get("created_to"):
        end = day_start_utc(filters["created_to"] + timedelta(days=1))
        conditions.append(Request.created_at < end)
    return conditions


# A page of requests loads what it shows with one small IN query per relation: joining all
# six (definition version, contract, vendor, department, submitter, assignee) made PostgreSQL
# spend ~16 ms planning every page, more than fetching it.
LIST_LOADING = (
    selectinload(Request.definition_version),
    selectinload(Request.contract),
    selectinload(Request.department),
    selectinload(Request.submitter),
    selectinload(Request.assignee),
)


def list_requests(session: Session, actor, filters: dict) -> tuple[list[Request], int, bool]:
    """One page of visible requests matching ``filters``; returns (items, total, exact): the
    total is exact up to COUNT_LIMIT and otherwise COUNT_LIMIT with ``exact`` false."""
    conditions = _conditions_but_title(actor, filters)
    page, per_page = filters.get("page", 1), filters.get("per_page", 25)
    sort = filters.get("sort", "-id")
    total = None
    if filters.get("q"):
        searched = _search_in_id_order(session, actor, filters, conditions, sort, page, per_page)
        if searched is not None:
            return searched
        titles = _titles_alone(session, actor, filters, sort)
        checked = conditions
        conditions = _with_title(session, actor, filters, conditions)
        searched, total = _search_page(session, conditions, sort, page, per_page, titles, checked)
        if searched is not None:
            return searched
    if total is None:
        matching = select(Request.id).where(*conditions).limit(COUNT_LIMIT + 1).subquery()
        total = int(session.scalar(select(func.count()).select_from(matching)) or 0)
    if session.get_bind().dialect.name == "sqlite":
        # SQLite sorts whole rows: a department's list at 100k sorted its 2,800 requests with
        # their descriptions for 25 of them (8 ms). The page's ids are sorted alone from the
        # department's index, and only the 25 rows are read.
        ids = session.scalars(
            select(Request.id)
            .where(*conditions)
            .order_by(SORTS[sort], Request.id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        ).all()
        items = _load_page(session, list(ids)) if ids else []
    else:
        items = session.scalars(
            select(Request)
            .options(*LIST_LOADING)
            .where(*conditions)
            .order_by(SORTS[sort], Request.id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        ).all()
    return list(items), min(total, COUNT_LIMIT), total <= COUNT_LIMIT


def _search_page(
    session: Session,
    conditions: list,
    sort: str,
    page: int,
    per_page: int,
    titles=None,
    checked=(),
):
    """A title search's page from one pass over its matches: returns (page, None) with the page
    as list_requests returns it, or (None, count) when the page must be cut as for any list:
    count is the capped count when the matches are more than COUNT_LIMIT (the caller need not
    count again), None when the page is past them or a page row fails ``checked``. The trigram
    index finds the matches, but each one costs a visit to its row; counting them and then
    sorting them for the page visited every row twice. ``titles``: the matches as (id, key)
    rows read elsewhere (_titles_alone), each page row then checked against ``checked``."""
    key = getattr(Request, sort.lstrip("-"))
    if titles is None:
        titles = select(Request.id.label("id"), key.label("key")).where(*conditions)
    matches = titles.limit(COUNT_LIMIT + 1).subquery()
    order = matches.c.key.desc() if sort.startswith("-") else matches.c.key.asc()
    rows = session.execute(
        select(matches.c.id, func.count().over())
        .order_by(order, matches.c.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    if not rows:
        return (([], 0, True), None) if page == 1 else (None, None)
    total = rows[0][1]
    if total > COUNT_LIMIT:
        return None, total
    shown = _load_page(session, [row[0] for row in rows], checked)
    return ((shown, total, True), None) if shown is not None else (None, None)


def _titles_alone(session: Session, actor, filters: dict, sort: str):
    """PostgreSQL: a title search's matches as (id, key) rows from the title table alone, the
    actor's scope read from its department and contract (migration 0011), when no filter
    narrows the list and it is sorted by id; None otherwise. Joining each match to its request
    cost IT's rare word at 1M 3.7 of its 7.5 ms (981 primary-key probes), a vendor's 7.3 ms."""
    if (
        session.get_bind().dialect.name != "postgresql"
        or sort not in ("id", "-id")
        or _confined(filters)
        or filters.get("department_id") is not None
    ):
        return None
    found = _TITLE_SEARCH.c.request_id
    return (
        _title_matches(filters["q"], None)
        .where(request_scope_clause(actor, _TITLE_SEARCH.c))
        .with_only_columns(found.label("id"), found.label("key"))
    )


def _load_page(session: Session, ids: list[int], conditions=()) -> list[Request] | None:
    """The requests with these ids, in this order, with what a list shows of them; None when
    one of them does not meet ``conditions``."""
    loaded = session.scalars(
        select(Request).options(*LIST_LOADING).where(Request.id.in_(ids), *conditions)
    )
    by_id = {request.id: request for request in loaded}
    return [by_id[i] for i in ids] if len(by_id) == len(ids) else None


def _search_in_id_order(
    session: Session, actor, filters: dict, conditions: list, sort: str, page: int, per_page: int
):
    """A title search sorted by id, from one walk of a title index in id order that stops at
    COUNT_LIMIT + 1 matches: the page as list_requests returns it, or None when another path
    must serve it (another sort or database, no usable index, a page past the counted matches,
    or a title table that disagrees with the requests). ``conditions``: the list's conditions
    but its title search.

    A common word matches titles in proportion to the table. Collecting every match first,
    as the general path does, grows with it: on SQLite FTS5 hands the whole list (14,000 rows
    at 100k) to an IN before the count can stop; on PostgreSQL a department's ~4,000 matches
    at 1M were hashed against its requests, and the page past the cap walked the requests'
    primary key through every department. The walks here stop at the cap:

    * SQLite, a search confined to departments: the departments' requests from their index,
      each title matched by LIKE (5.7 ms for one department's 2,800 requests at 100k, against
      ~48 ms through the FTS5 table's 14,300 matches of a common word).
    * SQLite otherwise, unless a filter confines the list (_confined): the FTS5 table in rowid
      order, each match joined to its request under the list's conditions (scope included) by
      primary key.
    * PostgreSQL, when the search is confined to departments: the title table's
      (department_id, request_id) index (migration 0010), titles filtered inside the index.
      When the actor sees whole departments and no other filter narrows the list, the titles
      give the count and only the page's rows are checked against the list's conditions;
      otherwise each match is checked by primary key as it is found. IT's and a vendor's
      searches keep the general path, whose trigram index serves them flat.
    """
    needle = filters["q"]
    dialect = session.get_bind().dialect.name
    if sort not in ("id", "-id") or page * per_page > COUNT_LIMIT:
        return None
    descending = sort == "-id"
    if dialect == "sqlite" and _search_departments(actor, filters):
        # A department's requests are read from its index and their titles matched by SQLite's
        # own LIKE, which folds case exactly as the FTS5 table's LIKE does (ASCII only).
        found = Request.id
        matches = select(found.label("request_id")).where(
            Request.title.like(_like_pattern(needle), escape="\\"), *conditions
        )
    elif dialect == "sqlite" and len(needle) >= 3 and not _confined(filters):
        found = _TITLE_FTS.c.rowid
        matches = (
            select(found.label("request_id"))
            .select_from(_TITLE_FTS.join(Request, Request.id == found))
            .where(_fts_like(needle), *conditions)
        )
    elif dialect == "postgresql" and (departments := _search_departments(actor, filters)):
        found = _TITLE_SEARCH.c.request_id
        matches = _title_matches(needle, departments)
        if _confined(filters) or not sees_whole_departments(actor, departments):
            # OFFSET 0 keeps the check a probe per match, in the walk's order: folded into a
            # join, the planner would be free to hash the department's requests instead.
            visible = select(Request.id).where(Request.id == found, *conditions).offset(0).lateral()
            matches = matches.join(visible, true())
    else:
        return None
    matches = matches.order_by(found.desc() if descending else found.asc())
    capped = matches.limit(COUNT_LIMIT + 1).subquery()
    rows = session.execute(
        select(capped.c.request_id, func.count().over())
        .order_by(capped.c.request_id.desc() if descending else capped.c.request_id.asc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    if not rows:
        return ([], 0, True) if page == 1 else None
    ids, total = [row[0] for row in rows], rows[0][1]
    shown = _load_page(session, ids, conditions)
    if shown is None:
        return None
    return shown, min(total, COUNT_LIMIT), total <= COUNT_LIMIT


# The list filters that select fewer requests than their departments hold.
_NARROWING = ("kind", "state", "contract_id", "system_id", "created_from", "created_to")


def _confined(filters: dict) -> bool:
    """Whether a list is confined by a filter. SQLite's planner then walks that part of the
    requests by its index and runs the FTS5 query once per request (38 ms for a department's
    298 requests at 10k) instead of walking the title matches in order."""
    return any(filters.get(key) is not None for key in _NARROWING)


def page_count(total: int, exact: bool, page: int, per_page: int, shown: int) -> int:
    """Pages of a list: from the total when exact, else at least one past a full page."""
    pages = -(-total // per_page) if total else 0
    if not exact and shown == per_page:
        pages = max(pages, page + 1)
    return pages


def iter_requests(session: Session, actor, filters: dict, batch: int = 1000) -> Iterator[Request]:
    """Every visible request matching ``filters`` (no paging), fetched in batches."""
    stmt = (
        select(Request)
        .options(*LIST_LOADING, selectinload(Request.system))
        .where(*_list_conditions(session, actor, filters))
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


def live_attachments(session: Session, request: Request) -> list[Attachment]:
    """The request's documents not removed, oldest first (the collection when already loaded:
    a plain query costs a third of a lazy load on the hot path of every transition)."""
    if "attachments" in request.__dict__:
        return [a for a in request.attachments if a.removed_at is None]
    return list(
        session.scalars(
            select(Attachment)
            .where(Attachment.request_id == request.id, Attachment.removed_at.is_(None))
            .order_by(Attachment.id)
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
