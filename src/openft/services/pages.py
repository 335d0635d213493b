"""Cursor pages over tables ordered by their `seq` column (events, checkpoints, evals, runs, items)."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from openft.errors import InvalidRequest, no_such_object

MAX_PAGE_LIMIT = 1000


def newest_first(
    session: Session,
    query: Select[Any],
    table: Any,
    *scope: ColumnElement[bool],
    after: str | None,
    limit: int,
    kind: str,
) -> tuple[list[Any], bool]:
    """One page of `query` after the row with id `after` (a row `scope` holds), and whether more rows
    follow."""
    if not 1 <= limit <= MAX_PAGE_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE_LIMIT}.", param="limit")
    cursor = after_cursor(session, table, after, kind, *scope)
    return seq_page(session, query, table, after_seq=cursor, order="desc", limit=limit)


def after_cursor(
    session: Session, table: Any, after: str | None, kind: str, *scope: ColumnElement[bool]
) -> int | None:
    """The `seq` of the row with id `after` that `scope` also holds: where a page past it starts. None
    without `after`; a 404 on `after`, naming `kind`, when no such row is in scope."""
    if not after:
        return None
    cursor: int | None = session.scalar(select(table.seq).where(table.id == after, *scope))
    if cursor is None:
        raise no_such_object(kind, after, "after")
    return cursor


def seq_page(
    session: Session,
    query: Select[Any],
    table: Any,
    *,
    after_seq: int | None,
    order: Literal["asc", "desc"],
    limit: int,
) -> tuple[list[Any], bool]:
    """Up to `limit` rows of `query` past the cursor `after_seq` in `order`, and whether more follow."""
    if after_seq is not None:
        query = query.where(table.seq > after_seq if order == "asc" else table.seq < after_seq)
    query = query.order_by(table.seq.asc() if order == "asc" else table.seq.desc())
    rows = list(session.scalars(query.limit(limit + 1)))
    return rows[:limit], len(rows) > limit
