"""Content-addressed-free blob storage on local disk with atomic writes.

A blob is written to a temp file in the same directory, fsynced, then renamed into place, so a reader
never sees half a file. Rows point at blobs by name; `sweep` removes temp files and blobs no row
references (left by a crash between the rename and the row insert).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

TMP_PREFIX = ".tmp-"
READ_CHUNK_BYTES = 1024 * 1024


class BlobTooLarge(Exception):
    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"blob exceeds {limit_bytes} bytes")
        self.limit_bytes = limit_bytes


@dataclass(frozen=True)
class StoredBlob:
    name: str
    bytes: int
    sha256: str
    md5: str


class BlobWriter:
    """Streams chunks to a temp file, hashing as it goes; `commit` makes the blob visible."""

    def __init__(self, root: Path, limit_bytes: int | None = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self._root = root
        self._limit = limit_bytes
        self.name = secrets.token_hex(16)
        self._tmp_path = root / f"{TMP_PREFIX}{self.name}"
        self._handle = open(self._tmp_path, "wb")  # noqa: SIM115 - closed in commit/abort
        self._sha256 = hashlib.sha256()
        # md5 only because the Uploads API lets clients check it on complete.
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.n_bytes = 0

    def write(self, chunk: bytes) -> None:
        if self._limit is not None and self.n_bytes + len(chunk) > self._limit:
            raise BlobTooLarge(self._limit)
        self._handle.write(chunk)
        self._sha256.update(chunk)
        self._md5.update(chunk)
        self.n_bytes += len(chunk)

    def commit(self) -> StoredBlob:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        os.replace(self._tmp_path, self._root / self.name)
        return StoredBlob(self.name, self.n_bytes, self._sha256.hexdigest(), self._md5.hexdigest())

    def abort(self) -> None:
        if not self._handle.closed:
            self._handle.close()
        self._tmp_path.unlink(missing_ok=True)


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def writer(self, limit_bytes: int | None = None) -> BlobWriter:
        return BlobWriter(self.root, limit_bytes)

    def write_all(self, chunks: Iterable[bytes], limit_bytes: int | None = None) -> StoredBlob:
        writer = self.writer(limit_bytes)
        try:
            for chunk in chunks:
                writer.write(chunk)
            return writer.commit()
        except BaseException:
            writer.abort()
            raise

    def path(self, name: str) -> Path:
        return self.root / name

    def iter_bytes(self, name: str, chunk_bytes: int = READ_CHUNK_BYTES) -> Iterator[bytes]:
        with open(self.path(name), "rb") as handle:
            while chunk := handle.read(chunk_bytes):
                yield chunk

    def delete(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def sweep(self, referenced: set[str], min_age_s: float = 3600.0) -> int:
        """Delete temp files and unreferenced blobs older than `min_age_s`; returns how many.

        The age guard keeps a blob that another process has just renamed into place, and is about to
        insert a row for, out of reach.
        """
        removed = 0
        cutoff = time.time() - min_age_s
        for entry in self.root.iterdir():
            orphan = entry.name.startswith(TMP_PREFIX) or entry.name not in referenced
            if orphan and entry.is_file() and entry.stat().st_mtime <= cutoff:
                entry.unlink(missing_ok=True)
                removed += 1
        return removed
