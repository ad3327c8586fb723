"""One error shape for the whole API (SPEC §4), never a 500 for bad input."""

from __future__ import annotations

from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from workflow.errors import WorkflowError

HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    500: "internal_error",
}
# One sentence for every unexpected failure, whichever path it took to the handler (an error
# after the commit, in web/api/commit.py, reaches it as werkzeug's InternalServerError).
INTERNAL_ERROR = "Something went wrong on our side; it has been logged."


def error_response(status: int, code: str, message: str, details: dict | None = None):
    """A JSON error response in the SPEC §4 shape."""
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return jsonify(body), status


def too_large_response():
    """413 for a request body over ``MAX_CONTENT_LENGTH``, worded like the workflow's TooLarge."""
    limit = current_app.config["MAX_UPLOAD_BYTES"]
    return error_response(
        413,
        "too_large",
        f"The upload is larger than the limit of {limit // (1024 * 1024)} MB.",
        {"max_bytes": limit},
    )


def register(app: Flask) -> None:
    """Map domain errors and HTTP errors under /api to the JSON shape."""

    @app.errorhandler(WorkflowError)
    def _workflow_error(exc: WorkflowError):
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # A bug, not bad input: log it with its traceback and answer in the error shape.
        if isinstance(exc, HTTPException):
            return _http_error(exc)
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if not request.path.startswith("/api/"):
            raise exc
        return error_response(500, "internal_error", INTERNAL_ERROR)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if not request.path.startswith("/api/"):
            return exc
        status = exc.code or 500
        if status == 413:
            return too_large_response()
        message = {404: "There is no such resource.", 500: INTERNAL_ERROR}.get(
            status, exc.description or exc.name
        )
        return error_response(status, HTTP_CODES.get(status, "error"), message)
