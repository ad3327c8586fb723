"""Attachments: bytes stored once by SHA-256 under the instance folder, metadata in the database.

Adding a document changes the request, so it moves the version and appends a history entry
(event ``attach``) like any step: the chain shows which documents existed when.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from models import Attachment, Request, utcnow
from workflow.engine import definition_for
from workflow.errors import Forbidden, InvalidInput, InvalidTransition, StaleVersion, TooLarge
from workflow.history import append_entry
from workflow.scope import roles_for_request

KIND = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
CHUNK = 1 << 16


def safe_filename(name: str | None) -> str:
    """A display name without directories or control characters (never used as a path)."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    return name[:255] or "file"


def blob_path(storage_dir: str | Path, sha256: str) -> Path:
    """Where the bytes with this SHA-256 live: ``<storage>/ab/abcdef…``."""
    return Path(storage_dir) / sha256[:2] / sha256


def _write_blob(storage_dir: Path, stream: BinaryIO, max_bytes: int) -> tuple[str, int]:
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
        target = blob_path(storage_dir, sha)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)  # same bytes, same name: replacing is harmless
        return sha, size
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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

    Raises Forbidden, InvalidInput, InvalidTransition (final state), TooLarge or StaleVersion.
    """
    if not roles_for_request(actor, request) - {"sys_admin", "sec_admin", "auditor"}:
        raise Forbidden("You may not add documents to this request.")
    if not isinstance(kind, str) or not KIND.match(kind):
        raise InvalidInput(
            "A document kind such as 'test_report' is required.",
            {"fields": {"kind": ["Lower-case letters, digits and '_'."]}},
        )
    if definition_for(request).is_final(request.state):
        raise InvalidTransition(
            "This request is finished; documents can no longer be added.", {"state": request.state}
        )
    if expected_version is not None and expected_version != request.version:
        raise StaleVersion(
            "The request changed since you loaded it. Reload and try again.",
            {"expected": expected_version, "current": request.version},
        )
    sha, size = _write_blob(Path(storage_dir), stream, max_bytes)
    name = safe_filename(filename)
    now = utcnow()
    attachment = Attachment(
        request_id=request.id,
        kind=kind,
        filename=name,
        content_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
        size=size,
        sha256=sha,
        uploaded_by_id=actor.id,
        uploaded_at=now,
    )
    version, from_state = request.version, request.state
    try:
        with session.begin_nested():
            # Append only: adding it to the session first would let the lazy load of
            # ``request.attachments`` autoflush it and then list it twice.
            request.attachments.append(attachment)
            to_state, comment = apply_document_change(request, f"document '{name}' added")
            request.version = version + 1
            request.updated_at = now
            session.flush()  # versioned UPDATE first: a concurrent loser fails on it
            append_entry(
                session,
                request,
                seq=request.version,
                at=now,
                actor=actor,
                event="attach",
                from_state=from_state,
                to_state=to_state,
                fields={"kind": kind, "filename": name, "sha256": sha, "size": size},
                comment=comment,
                definition_hash=request.definition_version.content_hash,
            )
            session.flush()
    except StaleDataError as exc:
        raise StaleVersion("Someone else changed this request at the same moment.") from exc
    return attachment


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
