"""Newest-first cursor pages over tables ordered by their `seq` column (events, checkpoints)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from openft.errors import InvalidRequest, no_such_object


def newest_first(
    session: Session, query: Select[Any], table: Any, *, after: str | None, limit: int, kind: str
) -> tuple[list[Any], bool]:
    """One page of `query` after the row with id `after`, and whether more rows follow."""
    if not 1 <= limit <= 1000:
        raise InvalidRequest("limit must be between 1 and 1000.", param="limit")
    query = query.order_by(table.seq.desc())
    if after:
        cursor = session.scalar(select(table.seq).where(table.id == after))
        if cursor is None:
            raise no_such_object(kind, after, "after")
        query = query.where(table.seq < cursor)
    rows = list(session.scalars(query.limit(limit + 1)))
    return rows[:limit], len(rows) > limit
