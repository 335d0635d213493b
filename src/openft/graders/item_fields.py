"""The `{{item.*}}` fields a grader reads, checked against a prompt line: the one rule that a
reinforcement job's file check and the data checker (`openft data check --grader`) both apply."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openft.data.issues import Issue
from openft.graders.criteria import templates_of
from openft.graders.templates import TemplateError, check_renders, lookup, references


class ItemFields:
    """What one grader reads from each line (`item`), and the lines that lack it."""

    def __init__(self, grader: Mapping[str, Any]) -> None:
        self.templates = list(dict.fromkeys(templates_of(grader)))
        # The fields that hold what an answer is compared with ("item.answer"): empty ones are suspicious.
        self.reference_paths = tuple(
            dict.fromkeys(path for path in _reference_templates(grader) for path in _item_paths(path))
        )

    def missing(self, item: Mapping[str, Any]) -> str | None:
        """Why the grader cannot read this line (naming the field and what to do), or None."""
        error = self._first_error(item)
        if error is None:
            return None
        return (
            f"the grader reads {{{{{error.reference}}}}}, but {error.message} "
            "Add the field to every line, or change the grader."
        )

    def issues(self, item: dict[str, Any], line: int) -> list[Issue]:
        """The data checker's form of `missing`: one issue naming the line and the field."""
        message = self.missing(item)
        if message is None:
            return []
        error = self._first_error(item)
        field = error.reference.removeprefix("item.") if error and error.reference else None
        return [Issue("missing_grader_field", line, message, field=field)]

    def _first_error(self, item: Mapping[str, Any]) -> TemplateError | None:
        for template in self.templates:
            try:
                check_renders(template, {"item": item}, only="item")
            except TemplateError as exc:
                return exc
        return None

    def empty_reference(self, item: Mapping[str, Any]) -> bool:
        """Whether a field the grader compares answers with is empty ("", [] or {}) in this line."""
        for path in self.reference_paths:
            try:
                value = lookup({"item": item}, path)
            except TemplateError:
                continue  # a missing field is an error of its own
            if value in ("", [], {}) or (isinstance(value, str) and not value.strip()):
                return True
        return False


def _reference_templates(grader: Mapping[str, Any]) -> list[str]:
    found = [grader["reference"]] if isinstance(grader.get("reference"), str) else []
    for sub in (grader.get("graders") or {}).values():
        if isinstance(sub, Mapping):
            found += _reference_templates(sub)
    return found


def _item_paths(template: str) -> list[str]:
    return [path for path in references(template) if path.startswith("item.")]
