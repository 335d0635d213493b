"""What every service verb needs: the database, the blob stores and the settings."""

from __future__ import annotations

import time
from dataclasses import dataclass

from openft.settings import Settings
from openft.store.blobs import BlobStore
from openft.store.db import Database
from openft.store.migrate import upgrade


@dataclass(frozen=True)
class Project:
    """The project a request acts for: every object belongs to exactly one."""

    id: str
    name: str


@dataclass
class ServiceContext:
    settings: Settings
    db: Database
    files: BlobStore
    upload_parts: BlobStore
    # Loopback-only servers accept any bearer token until the first key is created ("local mode";
    # openft.services.auth).
    local_mode_allowed: bool = True

    @classmethod
    def open(cls, settings: Settings, *, local_mode_allowed: bool = True) -> ServiceContext:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        upgrade(db.engine)
        return cls(
            settings=settings,
            db=db,
            files=BlobStore(settings.files_dir),
            upload_parts=BlobStore(settings.uploads_dir),
            local_mode_allowed=local_mode_allowed,
        )

    def close(self) -> None:
        self.db.dispose()


def now() -> int:
    """Unix seconds, the only timestamp unit on the wire."""
    return int(time.time())
