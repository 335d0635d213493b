"""Training lines and object checks shared by the end-to-end tests."""

from __future__ import annotations

import json
import re
import time
from typing import Any

FILE_ID = re.compile(r"^file-[0-9A-Za-z]{22}$")
UPLOAD_ID = re.compile(r"^upload_[0-9A-Za-z]{24}$")
PART_ID = re.compile(r"^part_[0-9A-Za-z]{24}$")


def chat_line(i: int = 0) -> bytes:
    messages = [
        {"role": "system", "content": "You answer in one word."},
        {"role": "user", "content": f"Question {i}?"},
        {"role": "assistant", "content": f"Answer{i}"},
    ]
    return json.dumps({"messages": messages}).encode() + b"\n"


def prompt_completion_line(i: int = 0) -> bytes:
    return json.dumps({"prompt": f"2 + {i} =", "completion": f" {2 + i}"}).encode() + b"\n"


def preference_line(i: int = 0) -> bytes:
    example = {
        "input": {"messages": [{"role": "user", "content": f"Greet person {i}."}]},
        "preferred_output": [{"role": "assistant", "content": "Hello, friend!"}],
        "non_preferred_output": [{"role": "assistant", "content": "Go away."}],
    }
    return json.dumps(example).encode() + b"\n"


def chat_jsonl(n_lines: int) -> bytes:
    return b"".join(chat_line(i) for i in range(n_lines))


def assert_file_object(
    file: Any,
    *,
    filename: str,
    purpose: str,
    n_bytes: int,
    status: str = "processed",
    status_details: str | None = None,
    expires_after_s: int | None = None,
    not_before: int | None = None,
) -> None:
    """Every field of a FileObject, as the SDK parsed it."""
    now = int(time.time())
    dumped = file.model_dump()
    assert FILE_ID.match(dumped["id"]), dumped["id"]
    assert (not_before or now - 60) <= dumped["created_at"] <= now
    assert dumped == {
        "id": dumped["id"],
        "object": "file",
        "bytes": n_bytes,
        "created_at": dumped["created_at"],
        "expires_at": None if expires_after_s is None else dumped["created_at"] + expires_after_s,
        "filename": filename,
        "purpose": purpose,
        "status": status,
        "status_details": status_details,
    }


def api_message(error: Any) -> str:
    """The server's own `error.message` (the SDK's `.message` prefixes "Error code: 400 - ")."""
    message: str = error.body["message"]
    return message
