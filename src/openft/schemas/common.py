"""Envelopes shared by every resource."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class CursorPage(BaseModel, Generic[T]):
    """`{object: "list", data, first_id, last_id, has_more}` as the files and checkpoints lists return."""

    object: Literal["list"] = "list"
    data: list[T]
    first_id: str | None
    last_id: str | None
    has_more: bool


class DeletedObject(BaseModel):
    id: str
    object: str
    deleted: bool
