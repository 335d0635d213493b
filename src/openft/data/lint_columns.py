"""Per-example numbers that spill to disk, and grouping over them one hash partition at a time.

The lint compares every example with every other (copies, conflicts, leakage), so it must remember a
few numbers per example for the whole file. Kept in memory, that grows with the file (about 120 bytes
per example once sorting is counted: 300 MB for a 1 GB file). Here the newest rows of each column
sit in a small buffer and older ones in an anonymous temporary file; an analysis that groups equal
hashes reads the columns back one partition of hash values at a time (equal hashes always fall in the
same partition), so its memory is bounded by the partition size, not the file size. Files that fit in
one buffer never touch the disk. What remains per example in memory is a byte or two (answer styles
and scripts, masks while a finding is built).
"""

from __future__ import annotations

import math
import tempfile
from array import array
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported when the lint runs, not when a table is filled
    import numpy as np
    import numpy.typing as npt

    Int64s = npt.NDArray[np.int64]

# Rows kept in memory per column before they go to disk, and rows per hash partition when grouping.
CHUNK_ROWS = 1 << 18
PARTITION_ROWS = 1 << 18


class SpilledColumn:
    """An append-only column of fixed-size numbers (an `array` typecode): memory, then disk."""

    def __init__(self, typecode: str) -> None:
        self.typecode = typecode
        self.buffer: array[int] = array(typecode)
        self._file: IO[bytes] | None = None
        self.n_spilled = 0

    def __len__(self) -> int:
        return self.n_spilled + len(self.buffer)

    def append(self, value: int) -> None:
        self.buffer.append(value)

    def spill(self) -> None:
        """Move the buffered rows to the column's temporary file (deleted when closed or collected)."""
        if not self.buffer:
            return
        if self._file is None:
            # Open for the column's life; closed by close() (or when collected), which deletes it.
            self._file = tempfile.TemporaryFile(prefix="openft-lint-")  # noqa: SIM115
        self._file.seek(0, 2)
        self.buffer.tofile(self._file)
        self.n_spilled += len(self.buffer)
        self.buffer = array(self.typecode)

    def chunks(self) -> Iterator[npt.NDArray[Any]]:
        """The column in order, CHUNK_ROWS at a time (the last piece is the in-memory buffer)."""
        import numpy as np

        dtype = np.dtype(self.typecode)
        if self._file is not None:
            self._file.seek(0)
            for start in range(0, self.n_spilled, CHUNK_ROWS):
                yield np.fromfile(self._file, dtype=dtype, count=min(CHUNK_ROWS, self.n_spilled - start))
        if self.buffer:
            yield np.frombuffer(self.buffer, dtype=dtype)

    def values(self) -> npt.NDArray[Any]:
        """The whole column in memory: only for columns of a byte or two per row."""
        import numpy as np

        pieces = list(self.chunks())
        return np.concatenate(pieces) if pieces else np.zeros(0, np.dtype(self.typecode))

    def take(self, indices: Int64s) -> Int64s:
        """The values at a few row indices (ascending)."""
        import numpy as np

        dtype = np.dtype(self.typecode)
        out = np.zeros(len(indices), np.int64)
        for i, index in enumerate(indices.tolist()):
            if index >= self.n_spilled:
                out[i] = self.buffer[index - self.n_spilled]
            else:
                assert self._file is not None
                self._file.seek(index * dtype.itemsize)
                out[i] = np.fromfile(self._file, dtype=dtype, count=1)[0]
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def n_partitions(n_rows: int) -> int:
    return max(1, math.ceil(n_rows / PARTITION_ROWS))


def column_mask(
    column: SpilledColumn, test: Callable[[npt.NDArray[Any]], npt.NDArray[np.bool_]]
) -> npt.NDArray[np.bool_]:
    """`test` applied to the column chunk by chunk: one boolean per row."""
    import numpy as np

    pieces = [test(chunk) for chunk in column.chunks()]
    return np.concatenate(pieces) if pieces else np.zeros(0, bool)


def partitions(
    key: SpilledColumn, *payload: SpilledColumn, count: int | None = None, skip_key: int | None = None
) -> Iterator[tuple[Int64s, Int64s, list[Int64s]]]:
    """(keys, row indices, payload values) of the rows whose key falls in each hash partition in turn.

    `count` partitions (default: enough for PARTITION_ROWS rows each); two columns split with the same
    count put equal keys in the same partition. Rows whose key is `skip_key` are left out. Within a
    partition rows stay in file order, so the first row of a key is its first occurrence. With more
    than one partition, the rows are first dealt into one temporary file per partition (one pass over
    the columns), then each partition is read back whole.
    """
    import numpy as np

    n = count or n_partitions(len(key))
    width = 2 + len(payload)  # key, row index, payload values: one int64 record per row
    with ExitStack() as open_files:  # closed (so deleted) when the caller is done or gives up
        files = [
            open_files.enter_context(tempfile.TemporaryFile(prefix="openft-lint-part-"))
            for _ in range(n if n > 1 else 0)
        ]
        whole: list[Int64s] = []
        start = 0
        for pieces in zip(key.chunks(), *(column.chunks() for column in payload), strict=True):
            records = np.empty((len(pieces[0]), width), np.int64)
            for i, piece in enumerate(pieces):
                records[:, 0 if i == 0 else i + 1] = piece
            records[:, 1] = np.arange(start, start + len(records))
            start += len(records)
            if skip_key is not None:
                records = records[records[:, 0] != skip_key]
            if n == 1:
                whole.append(records)
                continue
            part = records[:, 0] % n
            order = np.argsort(part, kind="stable")  # file order kept within each partition
            bounds = np.searchsorted(part[order], np.arange(n + 1))
            for p in range(n):
                records[order[bounds[p] : bounds[p + 1]]].tofile(files[p])
        for p in range(n):
            if n == 1:
                table = np.concatenate(whole) if whole else np.zeros((0, width), np.int64)
            else:
                files[p].seek(0)
                table = np.fromfile(files[p], dtype=np.int64).reshape(-1, width)
            yield table[:, 0], table[:, 1], [table[:, i] for i in range(2, width)]
