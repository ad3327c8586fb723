"""Error pages for people: what happened, in plain words, in Chinese and English."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask_babel import lazy_gettext
from flask_wtf.csrf import CSRFError

PAGES = {
    400: (
        lazy_gettext("Bad request"),
        lazy_gettext("The page expired or the form was incomplete; go back and send it again."),
    ),
    403: (
        lazy_gettext("Not allowed"),
        lazy_gettext("Your role does not allow this. Ask the IT department if you need it."),
    ),
    404: (
        lazy_gettext("Not found"),
        lazy_gettext("This page or record does not exist, or is not yours to see."),
    ),
    413: (
        lazy_gettext("File too large"),
        lazy_gettext("The uploaded file is larger than allowed."),
    ),
}


def _page(code: int):
    title, text = PAGES[code]
    return render_template("error.html", code=code, title=title, text=text), code


def register(app: Flask) -> None:
    """HTML error pages outside /api (the API keeps its JSON error shape)."""

    @app.errorhandler(CSRFError)
    def _csrf(exc):
        if request.path.startswith("/api/"):
            from web.api.errors import error_response

            return error_response(400, "csrf_failed", "The CSRF token is missing or invalid.")
        return _page(400)

    for code in PAGES:
        app.register_error_handler(code, _make(code))


def _make(code: int):
    def handler(exc):
        if request.path.startswith("/api/"):
            from web.api.errors import HTTP_CODES, error_response, too_large_response

            if code == 413:
                return too_large_response()
            return error_response(code, HTTP_CODES.get(code, "error"), str(exc.description))
        return _page(code)

    return handler
