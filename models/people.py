"""Users, their roles with scope, departments and API tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow

# SPEC §5. Vendor roles are scoped to a vendor or a contract, department users to a department.
ROLES = (
    "dept_user",
    "it_staff",
    "it_signer",
    "it_dba",
    "vendor_engineer",
    "vendor_manager",
    "sys_admin",
    "sec_admin",
    "auditor",
)
VENDOR_ROLES = ("vendor_engineer", "vendor_manager")
ADMIN_ROLES = ("sys_admin", "sec_admin", "auditor")


class Department(Base):
    """A hospital department (使用科室 or 信息科)."""

    __tablename__ = "departments"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))


class User(Base):
    """A person who signs in; the password is an argon2id hash."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    locked_at: Mapped[datetime | None] = mapped_column(DateTime)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locale: Mapped[str] = mapped_column(String(10), default="zh_CN")
    # Where SLA notifications are mailed when SMTP is configured (in-app only without one).
    email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    # Loaded when first read (the acting user's roles, once per request), not with every User:
    # a request's submitter and assignee are shown by name and need no roles.
    roles: Mapped[list[RoleAssignment]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    def role_names(self) -> set[str]:
        """Names of every role the user holds, whatever the scope."""
        return {r.role for r in self.roles}


class RoleAssignment(Base):
    """One role of a user, optionally limited to a department, vendor or contract."""

    __tablename__ = "role_assignments"
    __table_args__ = (
        UniqueConstraint("user_id", "role", "department_id", "vendor_id", "contract_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(40))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    vendor_id: Mapped[int | None] = mapped_column(ForeignKey("vendors.id"))
    contract_id: Mapped[int | None] = mapped_column(ForeignKey("contracts.id"))

    user: Mapped[User] = relationship(back_populates="roles")


class ApiToken(Base):
    """A bearer token: only its SHA-256 is stored; a revoked token never authenticates."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship()
