"""The system registry's judgement: which release is the newest, and which systems are stale.

DOMAIN §2, Z3: the version in use may not go more than the policy's ``upgrade.
max_version_age_months`` (3 in the Z template) without an update, and every update must be the
vendor's newest release. A system's last update is the date an upgrade was verified on it
(``last_upgrade_at``), or else the release date of the version it runs; a system whose last
update is unknown cannot show it is current and counts as stale.
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Contract, Release, System
from workflow.errors import Forbidden, InvalidInput
from workflow.localtime import hospital_today


def newest_release(system: System) -> Release | None:
    """The system's newest registered release (latest release date, then latest added)."""
    if not system.releases:
        return None
    return max(system.releases, key=lambda r: (r.released_on, r.id or 0))


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (the month's last day when it is shorter)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))


@dataclass
class SystemStatus:
    """One system's Z3 standing on a given day."""

    system: System
    newest: Release | None
    last_update: date | None
    max_months: int | None
    today: date

    @property
    def behind(self) -> bool:
        """A newer release than the one in use is registered."""
        return self.newest is not None and self.newest.version != self.system.current_version

    @property
    def update_due(self) -> date | None:
        """The last day the version in use may still run without an update."""
        if self.max_months is None or self.last_update is None:
            return None
        return add_months(self.last_update, self.max_months)

    @property
    def stale(self) -> bool:
        """Older than the policy allows (or of unknown age under a policy with a limit)."""
        if self.max_months is None:
            return False
        return self.update_due is None or self.today > self.update_due

    def as_data(self) -> dict:
        """The standing as the API shows it."""
        return {
            "newest_version": self.newest.version if self.newest else None,
            "behind": self.behind,
            "last_update": self.last_update.isoformat() if self.last_update else None,
            "max_version_age_months": self.max_months,
            "update_due": self.update_due.isoformat() if self.update_due else None,
            "stale": self.stale,
        }


def system_status(system: System, today: date | None = None) -> SystemStatus:
    """The system's Z3 standing today (Beijing) under its contract's policy."""
    contract = system.contract
    policy = ((contract.policy if contract else None) or {}).get("upgrade") or {}
    max_months = policy.get("max_version_age_months")
    last_update = hospital_today(system.last_upgrade_at) if system.last_upgrade_at else None
    if last_update is None:
        running = next((r for r in system.releases if r.version == system.current_version), None)
        last_update = running.released_on if running else None
    return SystemStatus(
        system,
        newest_release(system),
        last_update,
        int(max_months) if max_months is not None else None,
        today or hospital_today(),
    )


def stale_systems(systems: list[System], today: date | None = None) -> list[SystemStatus]:
    """The standing of each stale system among ``systems``."""
    statuses = [system_status(system, today) for system in systems]
    return [status for status in statuses if status.stale]


# ---------------------------------------------------------------- registry (sys_admin)

CODE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,59}$")
VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,59}$")


def _ensure_sys_admin(actor) -> None:
    if actor is None or "sys_admin" not in actor.role_names():
        raise Forbidden("Only the system administrator keeps the system registry.")


def register_system(
    session: Session, actor, contract: Contract, code: str, name: str, current_version: str = ""
) -> System:
    """Add a system under a contract; raises Forbidden (not sys_admin) or InvalidInput."""
    _ensure_sys_admin(actor)
    code, name, current_version = (
        (code or "").strip(),
        (name or "").strip(),
        (current_version or "").strip(),
    )
    problems = {}
    if not CODE.match(code):
        problems["code"] = ["Lower-case letters, digits, '_', '.' and '-'."]
    elif session.scalar(select(System.id).where(System.code == code)) is not None:
        problems["code"] = ["A system with this code exists."]
    if not name or len(name) > 200:
        problems["name"] = ["A name of 1 to 200 characters is required."]
    if current_version and not VERSION.match(current_version):
        problems["current_version"] = ["Not a valid version."]
    if problems:
        raise InvalidInput("Some fields are not valid.", {"fields": problems})
    system = System(
        code=code,
        name=name,
        vendor_id=contract.vendor_id,
        contract_id=contract.id,
        current_version=current_version or None,
    )
    session.add(system)
    session.flush()
    return system


def register_release(
    session: Session, actor, system: System, version: str, released_on, notes: str = ""
) -> Release:
    """Record a release the vendor published; raises Forbidden or InvalidInput."""
    _ensure_sys_admin(actor)
    version = (version or "").strip()
    problems = {}
    if not VERSION.match(version):
        problems["version"] = ["Not a valid version."]
    elif any(r.version == version for r in system.releases):
        problems["version"] = ["This release is already registered."]
    if not isinstance(released_on, date):
        problems["released_on"] = ["Not a valid date."]
    if len(notes or "") > 5000:
        problems["notes"] = ["At most 5000 characters."]
    if problems:
        raise InvalidInput("Some fields are not valid.", {"fields": problems})
    release = Release(version=version, released_on=released_on, notes=(notes or "").strip())
    system.releases.append(release)
    session.flush()
    return release
