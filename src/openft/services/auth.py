"""Projects and API keys. Keys are shown once and stored as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from openft import ids
from openft.errors import AuthenticationFailed, InvalidRequest, NotFound
from openft.services.context import Project, ServiceContext, now
from openft.store.tables import ApiKeyRow, ProjectRow

LOCAL_PROJECT_NAME = "personal"
_PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class ApiKeyInfo:
    id: str
    project: str
    redacted: str
    created_at: int
    revoked_at: int | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def find_project(ctx: ServiceContext, name: str) -> Project | None:
    """The project of that name, if it exists (never creates one)."""
    with ctx.db.session() as session:
        row = session.scalar(select(ProjectRow).where(ProjectRow.name == name))
        return None if row is None else Project(id=row.id, name=row.name)


def ensure_project(ctx: ServiceContext, name: str) -> Project:
    if not _PROJECT_NAME.match(name):
        raise InvalidRequest(
            f"Invalid project name {name!r}: use 1-64 lowercase letters, digits, '-' or '_'.", param="project"
        )
    existing = find_project(ctx, name)
    if existing is not None:
        return existing
    try:
        with ctx.db.session() as session:
            session.add(ProjectRow(id=ids.new_project_id(), name=name, created_at=now()))
    except IntegrityError:
        # Concurrent first requests (the local "personal" project) race to create it; one wins, the
        # others use the winner's row.
        pass
    created = find_project(ctx, name)
    assert created is not None, "the project was just created or found by name"
    return created


def create_key(ctx: ServiceContext, project_name: str) -> tuple[str, ApiKeyInfo]:
    """Returns the plaintext key (never stored) and its record."""
    project = ensure_project(ctx, project_name)
    key = ids.new_api_key()
    row = ApiKeyRow(
        id="key_" + ids.random_base62(16),
        project_id=project.id,
        key_hash=hash_key(key),
        redacted=key[:10] + "..." + key[-4:],
        created_at=now(),
    )
    with ctx.db.session() as session:
        session.add(row)
    return key, ApiKeyInfo(row.id, project.name, row.redacted, row.created_at, None)


def list_keys(ctx: ServiceContext) -> list[ApiKeyInfo]:
    with ctx.db.session() as session:
        rows = session.execute(
            select(ApiKeyRow, ProjectRow.name)
            .join(ProjectRow, ProjectRow.id == ApiKeyRow.project_id)
            .order_by(ApiKeyRow.created_at)
        ).all()
        return [ApiKeyInfo(k.id, name, k.redacted, k.created_at, k.revoked_at) for k, name in rows]


def revoke_key(ctx: ServiceContext, key_id: str) -> int:
    """Revoke a key for good; returns how many active keys are left."""
    with ctx.db.session() as session:
        result = session.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=now())
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(f"No active API key with id {key_id}.", param="key_id")
    return count_active_keys(ctx)


def count_active_keys(ctx: ServiceContext) -> int:
    with ctx.db.session() as session:
        return session.scalar(select(func.count()).where(ApiKeyRow.revoked_at.is_(None))) or 0


def local_mode_active(ctx: ServiceContext) -> bool:
    """Whether requests without a valid key are served, as the local project, right now."""
    with ctx.db.session() as session:
        return _local_mode_active(ctx, session)


def _local_mode_active(ctx: ServiceContext, session: Session) -> bool:
    # Local mode is for a loopback server nobody has secured yet. Once a key has existed, someone
    # chose to require keys: revoking them all must not quietly open the server again, so only the
    # explicit OPENFT_LOCAL_MODE brings local mode back (while no key is active).
    if not ctx.local_mode_allowed:
        return False
    keys = select(func.count()).select_from(ApiKeyRow)
    if ctx.settings.local_mode:
        keys = keys.where(ApiKeyRow.revoked_at.is_(None))
    return not session.scalar(keys)


def authenticate(ctx: ServiceContext, token: str | None) -> Project:
    """The project of a bearer token, or the local project while local mode applies."""
    with ctx.db.session() as session:
        if token:
            found = session.execute(
                select(ProjectRow, ApiKeyRow.revoked_at)
                .join(ApiKeyRow, ApiKeyRow.project_id == ProjectRow.id)
                .where(ApiKeyRow.key_hash == hash_key(token))
            ).first()
            if found is not None and found.revoked_at is None:
                return Project(id=found.ProjectRow.id, name=found.ProjectRow.name)
            if found is not None:  # revoked keys never act for anyone, local mode or not
                raise AuthenticationFailed(
                    f"Incorrect API key provided: {_redact(token)}. This key has been revoked; "
                    "create a key with `openft keys create --project NAME`."
                )
        local_mode = _local_mode_active(ctx, session)
    if local_mode:
        return ensure_project(ctx, LOCAL_PROJECT_NAME)
    if not token:
        raise AuthenticationFailed(
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). Create one with "
            "`openft keys create --project NAME`.",
            code=None,
        )
    raise AuthenticationFailed(
        f"Incorrect API key provided: {_redact(token)}. "
        "Create a key with `openft keys create --project NAME`."
    )


def _redact(token: str) -> str:
    return token[:6] + "*" * max(0, min(len(token) - 10, 20)) + token[-4:] if len(token) > 10 else "****"
