"""ORM models: remembered logins ("Keep me logged in")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Integer,
    String,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base


class LoginSession(Base):
    """A remembered login: the browser keeps `<partner_id>.<id>.<secret>` in a cookie; only the secret's
    SHA-256 is stored. It ends when it expires, on log-out, or when the user's session version changes
    (deactivation, password reset)."""

    __tablename__ = "login_sessions"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    token_hash: Mapped[str] = mapped_column(String(64))
    session_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        ForeignKeyConstraint(["partner_id", "user_id"], ["users.partner_id", "users.id"],
                             name="fk_login_sessions_user", ondelete="CASCADE"),
    )


class UserToken(Base):
    """A single-use link e-mailed to a user: confirm the e-mail address of a sign-up, or set a new password
    after a reset. The link carries `<partner_id>.<id>.<secret>`; only the secret's SHA-256 is stored."""

    __tablename__ = "user_tokens"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    purpose: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        CheckConstraint("purpose in ('confirm','reset')", name="purpose"),
        ForeignKeyConstraint(["partner_id", "user_id"], ["users.partner_id", "users.id"],
                             name="fk_user_tokens_user", ondelete="CASCADE"),
    )
