"""Domain errors with the stable codes of SPEC §4; the web layer maps ``status`` to HTTP."""

from __future__ import annotations


class WorkflowError(Exception):
    """Base of every refusal: a code, a sentence a user understands, and details."""

    code = "error"
    status = 400

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict:
        """The SPEC §4 error body."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class NotFound(WorkflowError):
    """The record does not exist, or is outside the actor's scope (never say which)."""

    code, status = "not_found", 404


class Forbidden(WorkflowError):
    """The actor lacks the role, or the record is outside the role's scope."""

    code, status = "forbidden", 403


class InvalidTransition(WorkflowError):
    """The event does not exist or does not leave the current state."""

    code, status = "invalid_transition", 409


class StaleVersion(WorkflowError):
    """Someone else changed the request first; reload and try again."""

    code, status = "stale_version", 409


class InvalidInput(WorkflowError):
    """Input fields failed validation; ``details['fields']`` has per-field messages."""

    code, status = "invalid_input", 422


class GuardFailed(WorkflowError):
    """One or more guards refused; ``details['reasons']`` names each guard and why."""

    code, status = "guard_failed", 422


class TooLarge(WorkflowError):
    """An upload exceeds the configured size limit."""

    code, status = "too_large", 413


class IntegrityFailed(WorkflowError):
    """Stored bytes are missing or no longer match their SHA-256; they are withheld."""

    code, status = "integrity_failed", 409


class SignInRefused(WorkflowError):
    """Wrong username or password, a locked or inactive account, or a demo account in production."""

    code, status = "unauthenticated", 401
