"""The application as gunicorn serves it in production, plus the floor endpoint of the benchmark.

``POST /bench/floor/<id>`` with ``{"version": n}`` does what any transition must do at the
least, through the same Flask, the same session and the same pool: one versioned UPDATE and one
INSERT in one transaction, then a JSON answer. It works on the generator's own two tables
(``bench_floor_items``, ``bench_floor_log``), shaped like requests and history but never audited.
It exists only in this module, never in the product.

    gunicorn -w 2 --threads 4 --chdir bench wsgi:app
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Blueprint, jsonify, request  # noqa: E402
from sqlalchemy import text  # noqa: E402

from models import utcnow  # noqa: E402
from web import create_app  # noqa: E402
from web.cli import tune_gc_for_serving  # noqa: E402
from web.db import get_session  # noqa: E402

floor = Blueprint("bench_floor", __name__)


@floor.post("/bench/floor/<int:item_id>")
def floor_transition(item_id: int):
    """One versioned UPDATE and one INSERT, committed: the least a transition can cost."""
    body = request.get_json(silent=True) or {}
    version = body.get("version")
    session = get_session()
    now = utcnow()
    updated = session.execute(
        text(
            "UPDATE bench_floor_items SET version = version + 1, updated_at = :now "
            "WHERE id = :id AND version = :version"
        ),
        {"now": now, "id": item_id, "version": version},
    )
    if updated.rowcount != 1:
        current = session.scalar(
            text("SELECT version FROM bench_floor_items WHERE id = :id"), {"id": item_id}
        )
        session.rollback()
        return jsonify({"error": {"code": "stale_version"}, "current": current}), 409
    session.execute(
        text(
            "INSERT INTO bench_floor_log (item_id, version, at, payload) "
            "VALUES (:id, :version, :now, :payload)"
        ),
        {"id": item_id, "version": version + 1, "now": now, "payload": json.dumps(body)},
    )
    session.commit()
    return jsonify({"id": item_id, "version": version + 1})


def build():
    """The product app with the floor blueprint (CSRF does not apply: no session cookie)."""
    application = create_app()
    application.register_blueprint(floor)
    from web.auth import csrf

    csrf.exempt(floor)
    return application


app = build()
# What ``changeflow serve`` does before it forks; here each worker builds its own app.
tune_gc_for_serving()
