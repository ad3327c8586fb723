"""Upgrade pages: the printable sign-off sheet (升级签字单) of one upgrade."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import login_required

from web.i18n import label
from web.ui import visible_request
from workflow import engine
from workflow.canonical import content_hash
from workflow.upgrade_rules import signature_body, signed_documents

bp = Blueprint("upgrade", __name__)


@bp.get("/requests/<int(max=2147483647):request_id>/signoff")
@login_required
def signoff_sheet(request_id: int):
    """The sign-off sheet: system, versions, the signature, every signed document and hash."""
    req = visible_request(request_id, "upgrade")
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
