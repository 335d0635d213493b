"""The `sample` and `item` namespaces a grader's templates read, and template rendering with OpenAI's
error flags: a reference to a missing field is `invalid_variable_error`; `{{sample.output_json}}` on a
sample that is not JSON is `sample_parse_error`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openft.graders.outcome import ErrorFlags
from openft.graders.templates import TemplateError, render

_NOT_JSON = object()


@dataclass(frozen=True)
class Sample:
    """A model's answer as graders see it."""

    output_text: str
    output_json: Any = _NOT_JSON  # the parsed answer where it is valid JSON
    # Other fields of the caller's sample namespace (an eval run's `model`, `finish_reason`).
    extra: Mapping[str, Any] | None = None

    @classmethod
    def from_text(cls, text: str, extra: Mapping[str, Any] | None = None) -> Sample:
        try:
            return cls(text, json.loads(text), extra)
        except (ValueError, RecursionError):
            return cls(text, extra=extra)

    @property
    def is_json(self) -> bool:
        return self.output_json is not _NOT_JSON

    def namespace(self) -> dict[str, Any]:
        values: dict[str, Any] = {**(self.extra or {}), "output_text": self.output_text}
        if self.is_json:
            values["output_json"] = self.output_json
        return values


class RenderFailed(Exception):
    def __init__(self, flags: ErrorFlags) -> None:
        super().__init__(flags.first_problem())
        self.flags = flags


def namespaces(sample: Sample, item: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"sample": sample.namespace(), "item": dict(item or {})}


def render_or_flag(template: str, sample: Sample, item: Mapping[str, Any] | None) -> str:
    """The rendered template; RenderFailed carries the flag OpenAI raises for what was missing."""
    try:
        return render(template, namespaces(sample, item))
    except TemplateError as exc:
        if (
            exc.reference is not None
            and exc.reference.startswith("sample.output_json")
            and not sample.is_json
        ):
            raise RenderFailed(ErrorFlags(sample_parse_error=True)) from None
        raise RenderFailed(ErrorFlags(invalid_variable_error=True)) from None


def render_pair(
    grader: Mapping[str, Any], sample: Sample, item: Mapping[str, Any] | None
) -> tuple[str, str] | ErrorFlags:
    """A comparing grader's rendered `input` and `reference`, or the flags of what was missing."""
    try:
        return render_or_flag(grader["input"], sample, item), render_or_flag(
            grader["reference"], sample, item
        )
    except RenderFailed as failed:
        return failed.flags
