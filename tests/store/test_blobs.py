"""Blob storage on local disk: atomic commit, abort leaves nothing, limits, and the orphan sweep."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from openft.store.blobs import TMP_PREFIX, BlobStore, BlobTooLarge


def test_commit_makes_the_blob_visible_with_its_hashes(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    writer = store.writer()
    chunks = [b"first chunk,", b"", b"second chunk", bytes(range(256))]
    for chunk in chunks:
        writer.write(chunk)
    assert not store.path(writer.name).exists()  # nothing visible before commit
    assert [p.name for p in store.root.iterdir()] == [TMP_PREFIX + writer.name]

    blob = writer.commit()

    data = b"".join(chunks)
    assert store.path(blob.name).read_bytes() == data
    assert (blob.bytes, blob.sha256, blob.md5) == (
        len(data),
        hashlib.sha256(data).hexdigest(),
        hashlib.md5(data).hexdigest(),
    )
    assert [p.name for p in store.root.iterdir()] == [blob.name]


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    writer = store.writer()
    writer.write(b"partial")

    writer.abort()
    writer.abort()  # twice is harmless

    assert list(tmp_path.iterdir()) == []


def test_the_limit_stops_the_write_before_it_is_exceeded(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    writer = store.writer(limit_bytes=10)
    writer.write(b"123456")

    with pytest.raises(BlobTooLarge) as caught:
        writer.write(b"78901")

    assert caught.value.limit_bytes == 10
    assert writer.n_bytes == 6
    writer.write(b"7890")  # exactly at the limit is fine
    assert store.path(writer.commit().name).read_bytes() == b"1234567890"


def test_write_all_removes_its_temp_file_when_the_source_fails(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)

    def source():
        yield b"some bytes"
        raise OSError("the source broke")

    with pytest.raises(OSError, match="the source broke"):
        store.write_all(source())

    assert list(tmp_path.iterdir()) == []


def test_iter_bytes_round_trips_in_chunks(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    data = os.urandom(10_000)
    blob = store.write_all([data[:3000], data[3000:]])

    chunks = list(store.iter_bytes(blob.name, chunk_bytes=4096))

    assert [len(c) for c in chunks] == [4096, 4096, 1808]
    assert b"".join(chunks) == data


def test_sweep_removes_old_temp_files_and_orphans_only(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    kept = store.write_all([b"referenced"])
    old_orphan = store.write_all([b"old orphan"])
    new_orphan = store.write_all([b"new orphan, maybe about to get its row"])
    old_tmp = tmp_path / f"{TMP_PREFIX}abandoned"
    old_tmp.write_bytes(b"half")
    two_hours_ago = time.time() - 7200
    for path in (store.path(kept.name), store.path(old_orphan.name), old_tmp):
        os.utime(path, (two_hours_ago, two_hours_ago))

    removed = store.sweep({kept.name})

    assert removed == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([kept.name, new_orphan.name])
    store.delete(old_orphan.name)  # deleting what is gone is harmless
