"""`{{item.field}}` / `{{sample.output_text}}` templates as OpenAI's Evals API writes them.

A reference is `{{ namespace.path }}` with a dotted path (`{{item.a.b}}`; a number indexes a list:
`{{item.choices.0}}`). Strings are substituted as they are; any other value as its JSON text.
Pure functions: the service turns `TemplateError` into a 400 or an errored output item.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

NAMESPACES = ("item", "sample")
_REFERENCE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*)\s*\}\}")


class TemplateError(Exception):
    """A template that names an unknown namespace, or a field the data does not have."""

    def __init__(self, message: str, reference: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reference = reference


def references(template: str) -> list[str]:
    """The dotted paths a template references, in order, each once (`["item.question", ...]`)."""
    return list(dict.fromkeys(match.group(1) for match in _REFERENCE.finditer(template)))


def check_namespaces(template: str) -> None:
    """Every reference starts with `item.` or `sample.` (and names a field, not a whole namespace)."""
    for path in references(template):
        root, _, rest = path.partition(".")
        if root not in NAMESPACES:
            raise TemplateError(
                f"The template reference {{{{{path}}}}} is not in a known namespace: use "
                "{{item.<field>}} or {{sample.output_text}}.",
                path,
            )
        if not rest:
            raise TemplateError(f"The template reference {{{{{path}}}}} must name a field.", path)


def lookup(namespaces: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path; `TemplateError` says which part is missing."""
    root, *parts = path.split(".")
    if root not in namespaces or namespaces[root] is None:
        raise TemplateError(f"The template references {{{{{path}}}}} but there is no `{root}` here.", path)
    value = namespaces[root]
    walked = root
    for part in parts:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise TemplateError(f"`{walked}` has no field `{part}` (referenced as {{{{{path}}}}}).", path)
        walked = f"{walked}.{part}"
    return value


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def render(template: str, namespaces: Mapping[str, Any]) -> str:
    """The template with every reference replaced by its value."""
    return _REFERENCE.sub(lambda match: as_text(lookup(namespaces, match.group(1))), template)


def check_renders(template: str, namespaces: Mapping[str, Any], only: str | None = None) -> None:
    """Raise `TemplateError` for the first reference (in namespace `only`, if given) that cannot resolve."""
    for path in references(template):
        if only is None or path.split(".", 1)[0] == only:
            lookup(namespaces, path)
