"""Users, roles and API tokens: argon2id for passwords, SHA-256 for random 256-bit tokens.

A password hash costs tens of milliseconds by design; doing it on every API call would cap
throughput near 10 requests per second, so API tokens are random and only hashed with SHA-256.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import Session, joinedload, object_session

from models import ApiToken, Contract, Department, RoleAssignment, User, Vendor, utcnow
from models.people import ROLES, VENDOR_ROLES
from workflow.errors import Forbidden, InvalidInput, NotFound, SignInRefused

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
MIN_PASSWORD = 10


def hash_password(password: str) -> str:
    """argon2id hash of a password; raises InvalidInput when it is too short."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidInput(
            f"A password needs at least {MIN_PASSWORD} characters.",
            {"fields": {"password": [f"At least {MIN_PASSWORD} characters."]}},
        )
    return _hasher.hash(password)


def check_password(user: User, password: str, demo_mode: bool = False) -> bool:
    """Whether the password is right; demo accounts only sign in in demo mode. Never raises."""
    if user is None or not user.password_hash or not user.is_active or user.locked_at:
        return False
    if user.is_demo and not demo_mode:
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _by_code(session: Session, model, code: str | None, label: str):
    if code is None:
        return None
    row = session.scalar(select(model).where(model.code == code))
    if row is None:
        raise NotFound(f"There is no {label} '{code}'.", {label: code})
    return row


def create_user(
    session: Session,
    username: str,
    password: str | None,
    roles: list[str],
    *,
    display_name: str = "",
    department: str | None = None,
    vendor: str | None = None,
    contract: str | None = None,
    is_demo: bool = False,
    email: str | None = None,
) -> User:
    """Create a user holding ``roles`` within one scope; raises InvalidInput or NotFound."""
    if email is not None and (
        len(email) > 254 or email.count("@") != 1 or any(c.isspace() for c in email)
    ):
        raise InvalidInput(
            f"'{email}' is not an email address.", {"fields": {"email": ["Not an address."]}}
        )
    if (
        not username
        or len(username) > 80
        or not username.replace("_", "").replace(".", "").isalnum()
    ):
        raise InvalidInput(
            "Usernames are 1–80 letters, digits, '.' or '_'.",
            {"fields": {"username": ["Invalid username."]}},
        )
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise InvalidInput(
            f"User '{username}' already exists.", {"fields": {"username": ["Already taken."]}}
        )
    dept = _by_code(session, Department, department, "department")
    vend = _by_code(session, Vendor, vendor, "vendor")
    contr = _by_code(session, Contract, contract, "contract")
    for role in roles:
        if role not in ROLES:
            raise InvalidInput(
                f"Unknown role '{role}' (known: {', '.join(ROLES)}).",
                {"fields": {"role": ["Unknown role."]}},
            )
        if role == "dept_user" and dept is None:
            raise InvalidInput(
                "A department user needs --department.",
                {"fields": {"department": ["Required for dept_user."]}},
            )
        if role in VENDOR_ROLES and vend is None and contr is None:
            raise InvalidInput(
                "A vendor user needs --vendor or --contract.",
                {"fields": {"vendor": ["Required for vendor roles."]}},
            )
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password) if password is not None else None,
        is_demo=is_demo,
        email=email or None,
    )
    session.add(user)
    for role in roles:
        user.roles.append(
            RoleAssignment(
                role=role,
                department_id=dept.id if dept and role == "dept_user" else None,
                vendor_id=vend.id if vend and role in VENDOR_ROLES else None,
                contract_id=contr.id if contr else None,
            )
        )
    session.flush()
    return user


MAX_FAILED_SIGN_INS = 5  # Q7: lock after repeated wrong passwords; unlocking is sec_admin's (Q8)


def sign_in(session: Session, username: str, password: str, demo_mode: bool = False) -> User:
    """The user if the password is right; counts failures and locks the account.

    Raises SignInRefused with one message for every cause, so the page never tells a
    stranger which usernames exist.
    """
    user = session.scalar(select(User).where(User.username == (username or "")[:80]))
    if user is not None and check_password(user, password or "", demo_mode):
        user.failed_logins = 0
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
        session.flush()
        return user
    if user is not None and user.locked_at is None:
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= MAX_FAILED_SIGN_INS:
            user.locked_at = utcnow()
        session.flush()
    raise SignInRefused(
        "Wrong username or password, or the account is locked "
        "(after repeated failures the security administrator must unlock it)."
    )


# Set in a session's ``info`` when it writes a user, a role assignment or a token: whoever
# remembers who a token belongs to (web.token_users) forgets it once such a session commits.
AUTH_CHANGED = "changeflow.auth_changed"


def _note_auth_change(_mapper, _connection, target) -> None:
    session = object_session(target)
    if session is not None:
        session.info[AUTH_CHANGED] = True


for _model in (User, RoleAssignment, ApiToken):
    for _name in ("after_insert", "after_update", "after_delete"):
        event.listen(_model, _name, _note_auth_change)


def token_digest(raw: str) -> str:
    """SHA-256 hex of a raw API token."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def issue_token(session: Session, user: User, name: str = "") -> str:
    """Create a random 256-bit API token; returns the raw value (shown once, stored hashed)."""
    raw = "cf_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_sha256=token_digest(raw), name=name))
    session.flush()
    return raw


def revoke_tokens(session: Session, user: User) -> int:
    """Revoke every live token of a user; returns how many."""
    tokens = session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ).all()
    for token in tokens:
        token.revoked_at = utcnow()
    session.flush()
    return len(tokens)


# One round trip: the user a live token belongs to, with the user's roles (every call needs
# both). The token row itself is not loaded: nothing after the check reads it, and each entity
# a query builds costs the worker more CPU than the columns it carries. Built once: building
# the loader options costs about as much as running the cached statement.
_USER_OF_LIVE_TOKEN = (
    select(User)
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(ApiToken.token_sha256 == bindparam("digest"), ApiToken.revoked_at.is_(None))
    .options(joinedload(User.roles))
)


def user_for_token(session: Session, raw: str) -> User | None:
    """The active user a raw token belongs to, or None (unknown, revoked, inactive)."""
    if not raw or len(raw) > 200:
        return None
    user = session.scalars(_USER_OF_LIVE_TOKEN, {"digest": token_digest(raw)}).unique().first()
    if user is None or not user.is_active or user.locked_at is not None:
        return None
    return user


def find_user(session: Session, username: str) -> User:
    """The user with this username; raises NotFound."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"There is no user '{username}'.", {"username": username})
    return user


def set_locked(session: Session, actor: User, user: User, locked: bool) -> None:
    """Lock or unlock an account (sec_admin's duty, Q8); raises Forbidden otherwise or on self."""
    if actor is None or "sec_admin" not in actor.role_names():
        raise Forbidden("Only the security administrator locks and unlocks accounts.")
    if actor.id == user.id:
        raise Forbidden("Nobody locks or unlocks their own account.")
    if locked:
        user.locked_at = user.locked_at or utcnow()
    else:
        user.locked_at = None
        user.failed_logins = 0
    session.flush()


LOCALES = ("zh_CN", "en")


def set_locale(session: Session, user: User, locale: str) -> None:
    """Keep the user's page language; raises InvalidInput for a language we do not offer."""
    if locale not in LOCALES:
        raise InvalidInput(
            f"Language must be one of {', '.join(LOCALES)}.", {"fields": {"locale": ["Unknown."]}}
        )
    user.locale = locale
    session.flush()
