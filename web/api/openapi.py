"""OpenAPI 3 document built by apispec from the API's marshmallow schemas."""

from __future__ import annotations

from functools import lru_cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from web.api import schemas as s

ERRORS = {
    "401": "unauthenticated",
    "403": "forbidden",
    "404": "not_found",
    "409": "invalid_transition, stale_version or integrity_failed",
    "413": "too_large",
    "422": "invalid_input or guard_failed",
}


def _op(
    summary: str,
    ok: tuple[str, object] | None = None,
    body=None,
    params=None,
    errors=("401", "403", "404", "422"),
) -> dict:
    responses = {}
    if ok:
        code, schema = ok
        responses[code] = (
            {"description": "No content"}
            if schema is None
            else {"description": "OK", "content": {"application/json": {"schema": schema}}}
        )
    for err in errors:
        responses[err] = {
            "description": ERRORS[err],
            "content": {"application/json": {"schema": "ErrorOut"}},
        }
    op = {"summary": summary, "responses": responses}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params is not None:
        op["parameters"] = [{"in": "query", "schema": params}]
    return op


@lru_cache(maxsize=1)
def build_spec() -> dict:
    """The whole document (built once per process)."""
    spec = APISpec(
        title="changeflow API",
        version="1",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Hospital IT maintenance contracts: requests, definitions, history. "
            "Authenticate with 'Authorization: Bearer <token>' "
            "(changeflow users token U) or the sign-in cookie."
        },
        servers=[{"url": "/api/v1"}],
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    # Leaves before the schemas that nest them: apispec registers nested schemas on first use.
    for name in (
        "LabelOut", "ErrorOut", "MeOut", "ContractOut", "SystemStatusOut", "SystemOut",
        "AttachmentOut", "SystemListQuery",
        "QuotaEntryOut", "QuotaOut", "SlaTargetOut", "SlaOut", "KpiOut", "ServiceLevelsOut",
        "ServiceLevelsQuery", "CalendarOverrideIn", "CalendarOverrideOut", "CalendarDayOut",
        "CalendarHolidayOut", "CalendarYearOut", "CalendarYearQuery",
        "EventOptionOut", "RequestSummaryOut", "RequestOut", "RequestPageOut", "HistoryOut",
        "DefinitionSummaryOut", "DefinitionOut", "RequestCreateIn", "EventIn", "RequestListQuery",
        "AttachmentRemoveIn", "RevisionSummaryOut", "RevisionOut",
    ):  # fmt: skip
        spec.components.schema(name, schema=getattr(s, name))
    rid = {"in": "path", "name": "request_id", "required": True, "schema": {"type": "integer"}}
    paths = {
        "/me": {"get": _op("The caller and their roles", ("200", "MeOut"), errors=("401",))},
        "/definitions": {
            "get": _op(
                "Current workflow definitions",
                ("200", {"type": "array", "items": "DefinitionSummaryOut"}),
                errors=("401",),
            )
        },
        "/definitions/{key}": {
            "parameters": [
                {"in": "path", "name": "key", "required": True, "schema": {"type": "string"}}
            ],
            "get": _op(
                "One definition with Mermaid text", ("200", "DefinitionOut"), errors=("401", "404")
            ),
        },
        "/contracts": {
            "get": _op(
                "Contracts in scope",
                ("200", {"type": "array", "items": "ContractOut"}),
                errors=("401",),
            )
        },
        "/contracts/{contract_id}/quota": {
            "parameters": [
                {
                    "in": "path",
                    "name": "contract_id",
                    "required": True,
                    "schema": {"type": "integer"},
                }
            ],
            "get": _op(
                "Free quota of the current period with its ledger entries",
                ("200", "QuotaOut"),
                errors=("401", "404"),
            ),
        },
        "/contracts/{contract_id}/service-levels": {
            "parameters": [
                {
                    "in": "path",
                    "name": "contract_id",
                    "required": True,
                    "schema": {"type": "integer"},
                }
            ],
            "get": _op(
                "The quarter's service-level figures (X4): resolution and on-time rates, "
                "satisfaction, breaches",
                ("200", "ServiceLevelsOut"),
                params="ServiceLevelsQuery",
                errors=("401", "404", "422"),
            ),
        },
        "/calendar": {
            "get": _op(
                "One year of the working-day calendar: statutory holidays, make-up days, IT's "
                "overrides, every date (IT staff, signers and DBAs)",
                ("200", "CalendarYearOut"),
                params="CalendarYearQuery",
                errors=("401", "403", "422"),
            )
        },
        "/calendar/overrides/{day}": {
            "parameters": [
                {
                    "in": "path",
                    "name": "day",
                    "required": True,
                    "schema": {"type": "string", "format": "date"},
                }
            ],
            "put": _op(
                "Declare the date a working day or a day off, with a reason (IT staff; audited)",
                ("200", "CalendarOverrideOut"),
                body="CalendarOverrideIn",
                errors=("401", "403", "409", "422"),
            ),
            "delete": _op(
                "Remove the date's override: the statutory calendar applies again (IT staff)",
                ("204", None),
                errors=("401", "403", "404", "422"),
            ),
        },
        "/systems": {
            "get": _op(
                "Systems in scope with their Z3 standing (stale=true: only stale ones)",
                ("200", {"type": "array", "items": "SystemOut"}),
                params="SystemListQuery",
                errors=("401", "422"),
            )
        },
        "/requests": {
            "get": _op(
                "List requests in scope",
                ("200", "RequestPageOut"),
                params="RequestListQuery",
                errors=("401", "422"),
            ),
            "post": _op("Raise a request", ("201", "RequestOut"), body="RequestCreateIn"),
        },
        "/requests/{request_id}": {
            "parameters": [rid],
            "get": _op(
                "One request with available events", ("200", "RequestOut"), errors=("401", "404")
            ),
        },
        "/requests/{request_id}/events/{event}": {
            "parameters": [
                rid,
                {"in": "path", "name": "event", "required": True, "schema": {"type": "string"}},
            ],
            "post": _op(
                "Fire an event",
                ("200", "RequestOut"),
                body="EventIn",
                errors=("401", "403", "404", "409", "422"),
            ),
        },
        "/requests/{request_id}/revisions": {
            "parameters": [rid],
            "get": _op(
                "Revisions of a schema change (without SQL text)",
                ("200", {"type": "array", "items": "RevisionSummaryOut"}),
                errors=("401", "404"),
            ),
        },
        "/requests/{request_id}/revisions/{number}": {
            "parameters": [
                rid,
                {"in": "path", "name": "number", "required": True, "schema": {"type": "integer"}},
            ],
            "get": _op(
                "One revision: exact SQL, SHA-256 hashes, findings, affected objects, structure",
                ("200", "RevisionOut"),
                errors=("401", "404"),
            ),
        },
        "/requests/{request_id}/history": {
            "parameters": [rid],
            "get": _op("Hash-chained history", ("200", "HistoryOut"), errors=("401", "404")),
        },
        "/requests/{request_id}/attachments": {
            "parameters": [rid],
            "post": {
                **_op(
                    "Attach a document",
                    ("201", "AttachmentOut"),
                    errors=("401", "403", "404", "409", "413", "422"),
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["file", "kind"],
                                "properties": {
                                    "file": {"type": "string", "format": "binary"},
                                    "kind": {"type": "string"},
                                    "version": {"type": "integer"},
                                },
                            }
                        }
                    },
                },
            },
        },
        "/attachments/{attachment_id}": {
            "parameters": [
                {
                    "in": "path",
                    "name": "attachment_id",
                    "required": True,
                    "schema": {"type": "integer"},
                }
            ],
            "get": {
                "summary": "Download a document (SHA-256 re-checked)",
                "responses": {
                    "200": {"description": "the file", "content": {"application/octet-stream": {}}},
                    "404": {
                        "description": "not_found",
                        "content": {"application/json": {"schema": "ErrorOut"}},
                    },
                    "409": {
                        "description": "integrity_failed: the stored bytes are missing or no "
                        "longer match their SHA-256; withheld and recorded as a security event",
                        "content": {"application/json": {"schema": "ErrorOut"}},
                    },
                },
            },
            "delete": {
                **_op(
                    "Remove a document from its request (history entry 'detach')",
                    ("200", "RequestOut"),
                    errors=("401", "403", "404", "409", "422"),
                ),
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": "AttachmentRemoveIn"}},
                },
            },
        },
    }
    for path, ops in paths.items():
        ops = dict(ops)
        spec.path(path=path, parameters=ops.pop("parameters", None), operations=ops)
    doc = spec.to_dict()
    doc["security"] = [{"bearer": []}]
    return doc
