"""Who each bearer token belongs to, remembered by each worker between API calls.

Looking the token's user and roles up cost a tenth of a transition's worker CPU (a query of its
own, and on SQLite a transaction of its own). A worker keeps what it found, per token digest,
and hands each request its own copy in the request's session (``Session.merge``), never the
remembered objects themselves. What it remembers is thrown away:

* at once, in every worker on this host, when anything changes a user, a role assignment or a
  token through changeflow (web, API or CLI): such a commit rewrites the *auth epoch* file
  (``AUTH_EPOCH_FILE``, in the instance folder), and every lookup compares the file's identity
  (one ``stat``) with the one it saw when it read the database;
* after ``TOKEN_CACHE_SECONDS`` (default 10; 0 turns the cache off) in any case, for a change
  made behind changeflow's back (SQL typed into the database, another host).

Unknown, revoked and inactive tokens are never remembered: each such call reads the database.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import weakref
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from models import User
from workflow.accounts import AUTH_CHANGED, token_digest, user_for_token

# A worker remembers at most this many tokens; past it, it starts again from none.
MAX_TOKENS = 1024

# The cache of each engine's application, for the commit hook (tests open sessions of their own
# on an application's engine).
_BY_ENGINE: weakref.WeakKeyDictionary[Engine, TokenUsers] = weakref.WeakKeyDictionary()


class TokenUsers:
    """One application's remembered token users, and its auth epoch file."""

    def __init__(self, epoch_file: Path, seconds: float):
        self.epoch_file = Path(epoch_file)
        self.seconds = seconds
        self._found: dict[str, tuple[object, float, User]] = {}

    def epoch(self) -> object:
        """The epoch file's identity now (None while there is none)."""
        try:
            found = os.stat(self.epoch_file)
        except FileNotFoundError:
            return None
        return (found.st_ino, found.st_mtime_ns, found.st_size)

    def bump(self) -> None:
        """Start a new epoch: every worker reads users from the database again. Raises OSError
        when the instance folder cannot be written."""
        # A new file put in place: a new inode even when two bumps share a clock tick.
        fresh = self.epoch_file.with_name(
            f"{self.epoch_file.name}.{os.getpid()}.{threading.get_ident()}"
        )
        fresh.write_text(secrets.token_hex(8))
        os.replace(fresh, self.epoch_file)

    def user(self, session: Session, raw: str, read) -> User | None:
        """The active user of a raw token, in ``session``; ``read(lookup)`` runs a database
        lookup the way the caller's session needs (web.db.read_first). Raises what it raises."""
        if self.seconds <= 0:
            return read(lambda: user_for_token(session, raw))
        # Any string hashes; one that is no token (too long, unknown) finds nothing and is not kept.
        digest = token_digest(raw)
        epoch, now = self.epoch(), time.monotonic()
        found = self._found.get(digest)
        if found is not None and found[0] == epoch and found[1] > now:
            # load=False: the copy is taken as it stands, with no query; roles cascade along.
            return session.merge(found[2], load=False)
        user = read(lambda: user_for_token(session, raw))
        if user is not None:
            if len(self._found) >= MAX_TOKENS:
                self._found.clear()
            # The epoch read *before* the database: a change committed meanwhile is a new one.
            self._found[digest] = (epoch, now + self.seconds, _detached_copy(user))
        return user


def _detached_copy(user: User) -> User:
    """A copy of a loaded user with its roles that belongs to no session."""
    scratch = Session()
    try:
        copy = scratch.merge(user, load=False)
        copy.role_names()  # the roles are loaded with the user; this only checks they are
    finally:
        scratch.expunge_all()
        scratch.close()
    return copy


def _bump_after_commit(session: Session) -> None:
    if not session.info.pop(AUTH_CHANGED, False):
        return
    bind = session.get_bind()
    found = _BY_ENGINE.get(getattr(bind, "engine", bind))
    if found is not None:
        found.bump()


def _forget_after_rollback(session: Session) -> None:
    session.info.pop(AUTH_CHANGED, None)


def init_app(app, engine: Engine) -> TokenUsers:
    """Give the app its token cache; commits that change users, roles or tokens start a new
    epoch (whichever session of this engine makes them)."""
    cache = TokenUsers(app.config["AUTH_EPOCH_FILE"], float(app.config["TOKEN_CACHE_SECONDS"]))
    _BY_ENGINE[engine] = cache
    if not event.contains(Session, "after_commit", _bump_after_commit):
        event.listen(Session, "after_commit", _bump_after_commit)
        event.listen(Session, "after_rollback", _forget_after_rollback)
    app.extensions["changeflow.token_users"] = cache
    return cache
