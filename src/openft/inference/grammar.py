"""`response_format` -> the grammar an answer must follow (OpenAI's Structured Outputs and JSON mode).

`json_schema` answers match the given JSON Schema; `json_object` answers are one JSON object. The
grammar comes from llguidance (the constrained-decoding library vLLM and llama.cpp use) and is checked
when the request arrives, so a schema it cannot follow is a 400 naming the field, never a failure while
generating. It is compiled against the model's tokenizer with the chat template's end-of-turn tokens as
its end: once the object is complete, the end of the turn is the only token left.

Torch-free: the masks themselves are applied by openft.inference.constrained.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openft.errors import InvalidRequest

# Compact, readable JSON: ", " and ": " as OpenAI's models write it; no free whitespace, which a small
# model could otherwise fill with newlines until max_tokens.
_JSON_STYLE: dict[str, Any] = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
FORMAT_TYPES = ("text", "json_object", "json_schema")


@dataclass(frozen=True)
class OutputGrammar:
    """What a request lets the model write, compiled for one tokenizer."""

    grammar: str  # llguidance's grammar
    tokenizer: Any = field(repr=False)  # llguidance.LLTokenizer: the model's vocabulary, end-of-turn as end
    stop_token_ids: tuple[int, ...]
    response_format: Mapping[str, Any] = field(repr=False)  # as given (a vLLM backend passes it on)

    def matcher(self) -> Any:
        """A fresh llguidance matcher: one per generated answer."""
        from llguidance import LLMatcher

        return LLMatcher(self.tokenizer, self.grammar, log_level=0)


def response_format_grammar(response_format: Mapping[str, Any] | None, *, param: str) -> str | None:
    """The grammar of a response_format (None for text), or a 400 naming what is wrong with it."""
    if response_format is None:
        return None
    kind = response_format.get("type")
    if kind not in FORMAT_TYPES:
        raise InvalidRequest(
            f"Invalid value for '{param}.type': {json.dumps(kind)}; use one of "
            + ", ".join(f"'{t}'" for t in FORMAT_TYPES)
            + ".",
            param=f"{param}.type",
        )
    if kind == "text":
        return None
    if kind == "json_object":
        return _compiled({"type": "object"}, lenient=True, param=param)
    spec = response_format.get("json_schema")
    if not isinstance(spec, Mapping):
        raise InvalidRequest(
            f"Missing required parameter: '{param}.json_schema' (an object with 'name' and 'schema').",
            param=f"{param}.json_schema",
        )
    name = spec.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidRequest(
            f"Invalid '{param}.json_schema.name': use 1 to 64 letters, digits, '_' or '-'.",
            param=f"{param}.json_schema.name",
        )
    schema = spec.get("schema", {})
    if not isinstance(schema, Mapping):
        raise InvalidRequest(
            f"Invalid '{param}.json_schema.schema': a JSON Schema object is expected.",
            param=f"{param}.json_schema.schema",
        )
    # strict: every keyword must be followed (an unsupported one is a 400); otherwise unsupported
    # keywords are ignored, as OpenAI does not promise adherence without strict.
    return _compiled(schema, lenient=not spec.get("strict"), param=f"{param}.json_schema.schema")


def output_grammar(
    response_format: Mapping[str, Any] | None,
    tokenizer: Any,
    *,
    tokenizer_key: str,
    stop_token_ids: Sequence[int],
    param: str = "response_format",
) -> OutputGrammar | None:
    """The request's grammar compiled for the model's tokenizer (a transformers fast tokenizer)."""
    grammar = response_format_grammar(response_format, param=param)
    if grammar is None or response_format is None:
        return None
    return OutputGrammar(
        grammar,
        _ll_tokenizer(tokenizer, tokenizer_key, tuple(stop_token_ids)),
        tuple(stop_token_ids),
        response_format,
    )


def _compiled(schema: Mapping[str, Any], *, lenient: bool, param: str) -> str:
    from llguidance import LLMatcher

    try:
        options: Any = {**_JSON_STYLE, "lenient": lenient}
        grammar = LLMatcher.grammar_from_json_schema(dict(schema), defaults=options)
    except ValueError as exc:
        raise InvalidRequest(f"Invalid JSON Schema in '{param}': {exc}", param=param) from None
    problem = LLMatcher.validate_grammar(grammar)
    if problem:
        raise InvalidRequest(
            f"Invalid JSON Schema in '{param}': {problem}. openft follows JSON Schema's structural "
            "keywords (type, properties, required, items, enum, const, anyOf, $ref, lengths and ranges, "
            "pattern); without 'strict': true, keywords it cannot follow are ignored.",
            param=param,
        )
    return str(grammar)


_TOKENIZERS: dict[tuple[str, tuple[int, ...]], Any] = {}
_TOKENIZERS_LOCK = threading.Lock()


def _ll_tokenizer(tokenizer: Any, key: str, stop_token_ids: tuple[int, ...]) -> Any:
    """llguidance's view of the vocabulary, made once per tokenizer (about a second for 49k tokens)."""
    from llguidance.hf import from_tokenizer

    with _TOKENIZERS_LOCK:
        cached = _TOKENIZERS.get((key, stop_token_ids))
        if cached is None:
            try:
                cached = from_tokenizer(tokenizer, n_vocab=len(tokenizer), eos_token=list(stop_token_ids))
            except ValueError as exc:  # a slow (Python) tokenizer
                raise InvalidRequest(
                    f"This model's tokenizer cannot constrain answers: {exc}.", param="response_format"
                ) from None
            _TOKENIZERS[(key, stop_token_ids)] = cached
        return cached
