"""The rows of an eval run's data source: JSONL lines, and a light check against the eval's item_schema.

A line is either `{"item": {...}}` (optionally with `"sample": {...}`), as OpenAI's eval files are
written, or a bare item object: a line whose keys are only `item`/`sample` with an object under `item`
is the wrapped form, anything else is the item itself. Blank lines are skipped (but counted).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Row:
    item: dict[str, Any]
    sample: dict[str, Any] | None
    where: str  # "line 3" or "data_source.source.content[2]", for messages


class ItemsError(Exception):
    pass


def row_from(value: Any, where: str) -> Row:
    if not isinstance(value, dict):
        raise ItemsError(f"{where}: expected a JSON object, got {type(value).__name__}.")
    if isinstance(value.get("item"), dict) and set(value) <= {"item", "sample"}:
        sample = value.get("sample")
        if sample is not None and not isinstance(sample, dict):
            raise ItemsError(f"{where}: `sample` must be an object.")
        return Row(value["item"], sample, where)
    return Row(value, None, where)


def parse_jsonl(lines: Iterable[bytes], max_rows: int) -> list[Row]:
    rows: list[Row] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = f"line {number}"
        try:
            value = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ItemsError(f"{where}: not valid JSON ({exc}). Each line must be one JSON object.") from None
        rows.append(row_from(value, where))
        if len(rows) > max_rows:
            raise ItemsError(f"The data source has more than {max_rows} items; split it into several runs.")
    if not rows:
        raise ItemsError("The data source has no items.")
    return rows


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


def schema_problem(item: Mapping[str, Any], schema: Mapping[str, Any]) -> str | None:
    """What is wrong with `item` under the schema's top-level `required` and property `type`s, if anything.

    Only these two keywords are checked (openft has no full JSON Schema validator).
    """
    for name in schema.get("required") or []:
        if name not in item:
            return f"missing required property '{name}'"
    properties = schema.get("properties") or {}
    for name, value in item.items():
        declared = properties.get(name, {}).get("type") if isinstance(properties.get(name), dict) else None
        if declared is None:
            continue
        allowed = [declared] if isinstance(declared, str) else list(declared)
        if not any(_is(value, kind) for kind in allowed):
            return f"property '{name}' should be of type {' or '.join(map(str, allowed))}"
    return None


def _is(value: Any, kind: Any) -> bool:
    types = _JSON_TYPES.get(kind) if isinstance(kind, str) else None
    if types is None:
        return True  # an unknown type name: not ours to judge
    if isinstance(value, bool) and kind in ("integer", "number"):
        return False
    return isinstance(value, types)
