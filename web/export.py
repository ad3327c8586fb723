"""Excel export of request lists, written row by row (openpyxl write-only) to a temporary file
and streamed from there, so a long list never sits in memory as a whole workbook."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from flask import Response, send_file
from flask_babel import gettext
from openpyxl import Workbook

from models import Request

# Excel treats a cell that starts with one of these as a formula (CSV/XLSX injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value) -> str:
    """Text for a cell that a spreadsheet will never run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def write_rows_xlsx(title: str, head: list[list], rows: Iterable[list], directory: str) -> Path:
    """Write ``head`` then ``rows`` (text made formula-safe) to a new .xlsx under ``directory``."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title[:31])
    for row in head:
        sheet.append([safe_text(v) if isinstance(v, str) else v for v in row])
    for row in rows:
        sheet.append([safe_text(v) if isinstance(v, str) else v for v in row])
    Path(directory).mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="export-", suffix=".xlsx", dir=directory)
    os.close(handle)
    workbook.save(name)
    return Path(name)


def write_requests_xlsx(
    requests: Iterable[Request],
    definition_for: Callable,
    label: Callable,
    local_time: Callable,
    directory: str,
) -> Path:
    """Write the requests to a new .xlsx file under ``directory``; returns its path."""
    header = [
        "#",
        gettext("Title"),
        gettext("Kind"),
        gettext("State"),
        gettext("Contract"),
        gettext("System"),
        gettext("Department"),
        gettext("Submitted by"),
        gettext("Assigned to"),
        gettext("Created (Beijing time)"),
        gettext("Updated (Beijing time)"),
    ]

    def row(request: Request) -> list:
        definition = definition_for(request)
        state = definition.states.get(request.state, {})
        department = request.department
        return [
            request.id,
            request.title,
            label(definition.title),
            label(state.get("label")) or request.state,
            request.contract.code if request.contract else "",
            request.system.name if request.system else "",
            label({"zh": department.name, "en": department.name_en}) if department else "",
            request.submitter.username if request.submitter else "",
            request.assignee.username if request.assignee else "",
            local_time(request.created_at),
            local_time(request.updated_at),
        ]

    return write_rows_xlsx(gettext("Requests"), [header], map(row, requests), directory)


def send_and_delete(path: Path, download_name: str) -> Response:
    """Stream the file as a download and remove it once sent."""
    response = send_file(
        path,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        as_attachment=True,
        download_name=download_name,
        max_age=0,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.call_on_close(lambda: path.unlink(missing_ok=True))
    return response
