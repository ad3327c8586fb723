"""Attachments: bytes stored once by SHA-256 under the instance folder, metadata in the database.

Adding or removing a document changes the request, so it moves the version and appends a history
entry (event ``attach`` or ``detach``) like any step: the chain shows which documents existed when.

Only a fixed vocabulary of document kinds (``DOCUMENT_KINDS``) and a short list of file types
(``FILE_TYPES``) are accepted; a file's type is checked by its extension *and* its content, so an
executable renamed ``report.pdf`` is refused before it is stored.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from models import Attachment, Request, utcnow
from workflow.engine import definition_for
from workflow.errors import (
    Forbidden,
    InvalidInput,
    InvalidTransition,
    NotFound,
    StaleVersion,
    TooLarge,
)
from workflow.history import append_entry
from workflow.scope import roles_for_request

CHUNK = 1 << 16
TEXT_SNIFF = 1 << 20  # a text file has no NUL byte in its first MiB

# The kinds of document a request can carry (labels: ``web.i18n.DOCUMENT_KINDS``).
DOCUMENT_KINDS = (
    "test_report",
    "test_cases",
    "rollback_plan",
    "upgrade_report",
    "supplementary_agreement",
    "delivery_note",
    "requirement_document",
    "structure_document",
    "backup_record",
    "quotation",
    "screenshot",
    "other",
)

# Roles that never add or remove documents (三权分立), and those that may remove anyone's.
ADMIN_ROLES = frozenset({"sys_admin", "sec_admin", "auditor"})
REMOVER_ROLES = frozenset({"it_staff", "it_signer"})


# ---------------------------------------------------------------- file types


def _starts_with(signature: bytes) -> Callable[[Path], bool]:
    def check(path: Path) -> bool:
        with path.open("rb") as fh:
            return fh.read(len(signature)) == signature

    return check


def _zip_with(member: str | None) -> Callable[[Path], bool]:
    """A real ZIP archive (local header first, readable central directory), holding ``member``."""

    def check(path: Path) -> bool:
        with path.open("rb") as fh:
            # Not just "somewhere a ZIP": a self-extracting .exe ends with one too.
            if fh.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
                return False
        if not zipfile.is_zipfile(path):
            return False
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
            return False
        return member is None or member in names

    return check


def _decodes_as(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _is_text(path: Path) -> bool:
    """Plain text: no NUL byte in the first MiB, and the whole file is UTF-8 or GB18030."""
    with path.open("rb") as fh:
        if b"\0" in fh.read(TEXT_SNIFF):
            return False
    return _decodes_as(path, "utf-8") or _decodes_as(path, "gb18030")


@dataclass(frozen=True)
class FileType:
    """An accepted file type: what a person calls it, the stored MIME type, the content check."""

    description: str
    content_type: str
    check: Callable[[Path], bool]


_JPEG = FileType("a JPEG image", "image/jpeg", _starts_with(b"\xff\xd8\xff"))
_TEXT_CHECKED = "(UTF-8 or GB18030, no binary content)"

# Lower-case extension → type. Anything else is refused.
FILE_TYPES: dict[str, FileType] = {
    "pdf": FileType("a PDF document", "application/pdf", _starts_with(b"%PDF-")),
    "docx": FileType(
        "a Word document (.docx)",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        _zip_with("word/document.xml"),
    ),
    "xlsx": FileType(
        "an Excel workbook (.xlsx)",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _zip_with("xl/workbook.xml"),
    ),
    "png": FileType("a PNG image", "image/png", _starts_with(b"\x89PNG\r\n\x1a\n")),
    "jpg": _JPEG,
    "jpeg": _JPEG,
    "zip": FileType("a ZIP archive", "application/zip", _zip_with(None)),
    "txt": FileType(f"a plain text file {_TEXT_CHECKED}", "text/plain", _is_text),
    "sql": FileType(f"an SQL script in plain text {_TEXT_CHECKED}", "application/sql", _is_text),
}
ACCEPTED = "PDF, Word (.docx), Excel (.xlsx), PNG, JPEG, ZIP, text (.txt) or SQL (.sql)"


def extension_of(name: str) -> str:
    """The lower-case extension of a display name ('' when it has none)."""
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem else ""


def file_type_for(name: str) -> tuple[str, FileType]:
    """The accepted type named by the file's extension; raises InvalidInput (field ``file``)."""
    ext = extension_of(name)
    if ext not in FILE_TYPES:
        message = (
            f"The file '{name}' is not of a type accepted here; send a {ACCEPTED} file."
            if ext
            else f"The file '{name}' has no file type (extension); send a {ACCEPTED} file."
        )
        raise InvalidInput(message, _file_problem(message, "unknown_type", name, ext))
    return ext, FILE_TYPES[ext]


def check_content(path: Path, name: str) -> str:
    """Refuse bytes that are not what the name's extension says; returns the MIME type."""
    ext, file_type = file_type_for(name)
    if not file_type.check(path):
        message = f"The file '{name}' is not {file_type.description}."
        raise InvalidInput(message, _file_problem(message, "content_mismatch", name, ext))
    return file_type.content_type


def _file_problem(message: str, problem: str, name: str, ext: str) -> dict:
    return {
        "fields": {"file": [message]},
        "file_type": {
            "problem": problem,
            "filename": name,
            "extension": ext,
            "accepted": sorted(FILE_TYPES),
        },
    }


# ---------------------------------------------------------------- storage


def safe_filename(name: str | None) -> str:
    """A display name without directories or control characters (never used as a path)."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    return name[:255] or "file"


def blob_path(storage_dir: str | Path, sha256: str) -> Path:
    """Where the bytes with this SHA-256 live: ``<storage>/ab/abcdef…``."""
    return Path(storage_dir) / sha256[:2] / sha256


def _write_blob(
    storage_dir: Path,
    stream: BinaryIO,
    max_bytes: int,
    accept: Callable[[Path], object] | None = None,
) -> tuple[str, int]:
    """Write to a temporary file, hash it, let ``accept`` check it, then move it into place.

    Whatever is refused (too large, wrong content) leaves no file behind.
    """
    storage_dir.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(dir=storage_dir, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(
                        f"The file is larger than the limit of {max_bytes // (1024 * 1024)} MB.",
                        {"max_bytes": max_bytes},
                    )
                digest.update(chunk)
                out.write(chunk)
        sha = digest.hexdigest()
        if accept is not None:
            accept(Path(tmp))
        target = blob_path(storage_dir, sha)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)  # same bytes, same name: replacing is harmless
        return sha, size
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ---------------------------------------------------------------- adding and removing


def apply_document_change(request: Request, what: str) -> tuple[str, str]:
    """Where the definition says so (``document_changes``), a changed set of documents voids
    what was signed over them: the listed fields are cleared and the request goes back.

    Returns the state the request is in afterwards and the comment for the history entry.
    """
    changes = definition_for(request).content.get("document_changes")
    void_in = (changes or {}).get("void_in") or []
    if isinstance(void_in, str):
        void_in = [void_in]
    if request.state not in void_in:
        return request.state, ""
    data = dict(request.data or {})
    for name in changes.get("clear") or ():
        data.pop(name, None)
    request.data = data
    request.state = changes["to"]
    return request.state, f"Signature void: {what} after signing; back to '{request.state}'."


def _record_document_change(
    session: Session,
    request: Request,
    actor,
    *,
    change: Callable[[], None],
    event: str,
    what: str,
    fields: dict,
    now,
) -> None:
    """Apply ``change`` (a document added or removed) in one savepoint with what follows from
    it: a voided signature where the definition says so, the next version and a history entry.
    """
    version, from_state = request.version, request.state
    try:
        with session.begin_nested():
            change()
            to_state, comment = apply_document_change(request, what)
            request.version = version + 1
            request.updated_at = now
            session.flush()  # versioned UPDATE first: a concurrent loser fails on it
            append_entry(
                session,
                request,
                seq=request.version,
                at=now,
                actor=actor,
                event=event,
                from_state=from_state,
                to_state=to_state,
                fields=fields,
                comment=comment,
                definition_hash=request.definition_version.content_hash,
            )
            session.flush()
    except StaleDataError as exc:
        raise StaleVersion("Someone else changed this request at the same moment.") from exc


def _check_version(request: Request, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != request.version:
        raise StaleVersion(
            "The request changed since you loaded it. Reload and try again.",
            {"expected": expected_version, "current": request.version},
        )


def _check_kind(kind) -> None:
    known = ", ".join(DOCUMENT_KINDS)
    details = {"fields": {"kind": [f"One of: {known}."]}, "known_kinds": list(DOCUMENT_KINDS)}
    if not isinstance(kind, str) or not kind:
        raise InvalidInput("A document kind such as 'test_report' is required.", details)
    if kind not in DOCUMENT_KINDS:
        shown = kind if len(kind) <= 60 else kind[:60] + "…"
        raise InvalidInput(
            f"'{shown}' is not a known kind of document; the known kinds are: {known}.", details
        )


def add_attachment(
    session: Session,
    request: Request,
    actor,
    *,
    kind: str,
    filename: str,
    stream: BinaryIO,
    storage_dir: str | Path,
    max_bytes: int,
    expected_version: int | None = None,
) -> Attachment:
    """Store a file on a request and record it in the history.

    Raises Forbidden, InvalidInput (unknown kind, file type not accepted or content not matching
    it), InvalidTransition (final state), TooLarge or StaleVersion.
    """
    if not roles_for_request(actor, request) - ADMIN_ROLES:
        raise Forbidden("You may not add documents to this request.")
    _check_kind(kind)
    if definition_for(request).is_final(request.state):
        raise InvalidTransition(
            "This request is finished; documents can no longer be added.", {"state": request.state}
        )
    _check_version(request, expected_version)
    name = safe_filename(filename)
    # Size first (413 whatever the type), then extension and content, before it is stored.
    sha, size = _write_blob(
        Path(storage_dir), stream, max_bytes, accept=lambda tmp: check_content(tmp, name)
    )
    now = utcnow()
    attachment = Attachment(
        request_id=request.id,
        kind=kind,
        filename=name,
        content_type=file_type_for(name)[1].content_type,
        size=size,
        sha256=sha,
        uploaded_by_id=actor.id,
        uploaded_at=now,
    )
    # Append only: adding it to the session first would let the lazy load of
    # ``request.attachments`` autoflush it and then list it twice.
    _record_document_change(
        session,
        request,
        actor,
        change=lambda: request.attachments.append(attachment),
        event="attach",
        what=f"document '{name}' added",
        fields={"kind": kind, "filename": name, "sha256": sha, "size": size},
        now=now,
    )
    return attachment


def may_remove_attachment(actor, request: Request, attachment: Attachment) -> bool:
    """The uploader (still working on the request) or IT staff and signers of the request."""
    roles = roles_for_request(actor, request)
    if roles & REMOVER_ROLES:
        return True
    return attachment.uploaded_by_id == getattr(actor, "id", None) and bool(roles - ADMIN_ROLES)


def remove_attachment(
    session: Session,
    request: Request,
    actor,
    attachment_id: int,
    expected_version: int | None = None,
) -> Attachment:
    """Mark a document of the request removed and record it in the history (event ``detach``).

    The bytes stay (the history names their SHA-256); the document no longer counts for
    ``has_attachment`` nor is it listed. Raises NotFound (not this request's, out of scope, or
    already removed), Forbidden, InvalidTransition (final state) or StaleVersion.
    """
    attachment = next((a for a in request.attachments if a.id == attachment_id), None)
    roles = roles_for_request(actor, request)
    if attachment is None or not roles:
        raise NotFound(
            "There is no such document, or it is not yours to see.",
            {"attachment_id": attachment_id},
        )
    if not may_remove_attachment(actor, request, attachment):
        raise Forbidden(
            "Only whoever uploaded this document, or IT staff, may remove it.",
            {"attachment_id": attachment_id},
        )
    if attachment.removed_at is not None:
        raise NotFound(
            "This document has already been removed.",
            {"attachment_id": attachment_id, "removed": True},
        )
    if definition_for(request).is_final(request.state):
        raise InvalidTransition(
            "This request is finished; documents can no longer be removed.",
            {"state": request.state},
        )
    _check_version(request, expected_version)
    now = utcnow()

    def change() -> None:
        attachment.removed_at = now

    _record_document_change(
        session,
        request,
        actor,
        change=change,
        event="detach",
        what=f"document '{attachment.filename}' removed",
        fields={
            "kind": attachment.kind,
            "filename": attachment.filename,
            "sha256": attachment.sha256,
        },
        now=now,
    )
    return attachment


# ---------------------------------------------------------------- reading


def open_attachment(storage_dir: str | Path, attachment: Attachment) -> Path:
    """Path of the bytes after re-checking their SHA-256; raises OSError or ValueError."""
    path = blob_path(storage_dir, attachment.sha256)
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != attachment.sha256:
        raise ValueError(f"attachment {attachment.id}: stored bytes no longer match their SHA-256")
    return path
