"""Lone UTF-16 surrogates: JSON can spell them (`"\\ud800"`) but they are not Unicode text.

A JSON writer that cuts a string between the two halves of an emoji leaves one behind. Python decodes it
into a `str` that cannot be encoded as UTF-8, so a tokenizer fails on it much later with a message about
its own internals; these helpers find it first and name the field.
"""

from __future__ import annotations

from typing import Any


def lone_surrogate_field(value: Any, path: str = "") -> str | None:
    """The JSON path of the first string (value or key) in `value` that holds a lone surrogate, such as
    `messages[1].content`; "" when `value` itself is that string; None when there is none."""
    if isinstance(value, str):
        return path if not _encodable(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if not _encodable(key):
                return here.encode("utf-8", "backslashreplace").decode("ascii")
            found = lone_surrogate_field(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = lone_surrogate_field(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def may_hold_lone_surrogate(json_text: str) -> bool:
    """False when the JSON text cannot decode to a lone surrogate: one only comes from a `\\uD800`-`\\uDFFF`
    escape (raw UTF-8 cannot carry one). A cheap test before walking the decoded value."""
    return "\\ud" in json_text or "\\uD" in json_text


def lone_surrogate_message(field: str) -> str:
    where = f"'{field}'" if field else "the text"
    return (
        f"{where} has an invalid character: an unpaired surrogate (a lone half of a UTF-16 pair, such as "
        "\\ud800), which is not Unicode text and cannot be tokenized. Remove it, or fix what wrote the text "
        "(it split an emoji or another character in two)."
    )


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
