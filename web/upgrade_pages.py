"""Upgrade pages: the printable sign-off sheet (升级签字单) of one upgrade."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import login_required

from web.auth import current_actor
from web.db import get_session
from web.i18n import label
from workflow import engine, queries
from workflow.canonical import content_hash
from workflow.errors import NotFound
from workflow.upgrade_rules import signature_body, signed_documents

bp = Blueprint("upgrade", __name__)


@bp.get("/requests/<int(max=2147483647):request_id>/signoff")
@login_required
def signoff_sheet(request_id: int):
    """The sign-off sheet: system, versions, the signature, every signed document and hash."""
    try:
        req = queries.get_request(get_session(), current_actor(), request_id)
    except NotFound:
        abort(404)
    if req.kind != "upgrade":
        abort(404)
    signature = (req.data or {}).get("signature")
    intact = bool(signature) and (
        content_hash(signature_body(signature)) == signature.get("digest")
        and signature_body(signature)["documents"] == signed_documents(req)
    )
    return render_template(
        "upgrade/signoff.html",
        req=req,
        definition=engine.definition_for(req),
        signature=signature,
        intact=intact,
        label=label,
    )


def init_app(app) -> None:
    """Register the pages."""
    app.register_blueprint(bp)
