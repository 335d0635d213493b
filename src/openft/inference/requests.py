"""Request bodies -> what the engine needs: messages and tools to render, prompt tokens, sampling options.

Every check that can fail says which parameter is wrong (OpenAI's `param`), so a bad request is a 400
that names what to fix, never a failure inside the engine.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from openft.data.surrogates import lone_surrogate_field, lone_surrogate_message
from openft.errors import InvalidRequest
from openft.inference.types import SamplingParams
from openft.schemas.chat import ChatCompletionRequest, CompletionRequest, SamplingFields

MAX_STOP_SEQUENCES = 4


def check_chat_options(body: ChatCompletionRequest) -> None:
    if body.functions:
        raise InvalidRequest(
            "'functions' is deprecated and not served by openft: use 'tools'.", param="functions"
        )
    if body.audio is not None:
        raise InvalidRequest("openft serves text models: audio output is not available.", param="audio")
    # OpenAI's JSON mode rule: a model not told to write JSON may write whitespace until max_tokens.
    json_mode = body.response_format is not None and body.response_format.type == "json_object"
    if json_mode and not any("json" in json.dumps(m.content).lower() for m in body.messages):
        raise InvalidRequest(
            "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
            "'json_object'.",
            param="messages",
        )
    if body.top_logprobs and not body.logprobs:
        raise InvalidRequest("'top_logprobs' needs 'logprobs' set to true.", param="top_logprobs")
    check_stream_options(body)


def check_stream_options(body: SamplingFields) -> None:
    if body.stream_options is not None and not body.stream:
        raise InvalidRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param="stream_options"
        )


def chat_messages(body: ChatCompletionRequest) -> list[dict[str, Any]]:
    """The conversation as the chat template wants it: plain dicts, content parts joined into text."""
    messages = []
    for i, message in enumerate(body.messages):
        content = message.content
        if isinstance(content, list):
            for j, part in enumerate(content):
                if part.type != "text" or part.text is None:
                    raise InvalidRequest(
                        f"Content part type '{part.type}' is not supported: openft serves text models, so "
                        "content parts must be {'type': 'text', 'text': ...}.",
                        param=f"messages[{i}].content[{j}].type",
                    )
            content = "".join(part.text or "" for part in content)
        if content is None and not (message.role == "assistant" and message.tool_calls):
            raise InvalidRequest(
                f"Invalid value for 'content': {message.role} messages must have content.",
                param=f"messages[{i}].content",
            )
        rendered: dict[str, Any] = {"role": message.role, "content": content or ""}
        if message.tool_calls:
            rendered["tool_calls"] = [call.model_dump() for call in message.tool_calls]
        if message.tool_call_id:
            rendered["tool_call_id"] = message.tool_call_id
        if message.name:
            rendered["name"] = message.name
        _check_text(rendered, f"messages[{i}]")
        messages.append(rendered)
    return messages


def _check_text(value: Any, param: str) -> None:
    """A lone surrogate is a 400 naming its field, not a tokenizer error (or a 500) later."""
    field = lone_surrogate_field(value)
    if field is not None:
        where = f"{param}.{field}" if field and not field.startswith("[") else param + field
        raise InvalidRequest(f"Invalid value: {lone_surrogate_message(where)}", param=where)


def chat_tools(body: ChatCompletionRequest) -> list[dict[str, Any]] | None:
    if not body.tools:
        return None
    for i, tool in enumerate(body.tools):
        function = tool.get("function")
        if tool.get("type") != "function" or not isinstance(function, dict) or not function.get("name"):
            raise InvalidRequest(
                "Each tool must be {'type': 'function', 'function': {'name': ..., 'parameters': ...}}.",
                param=f"tools[{i}]",
            )
        _check_text(tool, f"tools[{i}]")
    return list(body.tools)


def sampling_params(
    body: SamplingFields, *, max_tokens: int, logprobs: int | None, vocab_size: int
) -> SamplingParams:
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        n=body.n or 1,
        stop=_stop_sequences(body.stop),
        seed=body.seed,
        presence_penalty=body.presence_penalty or 0.0,
        frequency_penalty=body.frequency_penalty or 0.0,
        logit_bias=_logit_bias(body.logit_bias, vocab_size),
        logprobs=logprobs,
    )


def completion_budget(
    requested: int | None,
    n_prompt: int,
    context_length: int,
    *,
    prompt_param: str,
    default: int | None = None,
) -> int:
    """max_tokens, checked against the context window; by default `default`, or less where the prompt
    leaves less room (None: all the room it leaves)."""
    if requested is None and n_prompt < context_length:
        room = context_length - n_prompt
        return room if default is None else max(1, min(default, room))
    wanted = n_prompt + (requested or 1)
    if wanted > context_length:
        raise InvalidRequest(
            f"This model's maximum context length is {context_length} tokens. However, you requested "
            f"{wanted} tokens ({n_prompt} in the {prompt_param}, {requested or 0} in the completion). "
            f"Please reduce the length of the {prompt_param} or completion.",
            param=prompt_param,
            code="context_length_exceeded",
        )
    assert requested is not None
    return requested


def completion_prompts(body: CompletionRequest, tokenizer: Any) -> list[list[int]]:
    """Token ids of each prompt. Text is encoded without special tokens, as training encodes prompts."""
    prompt = body.prompt
    if isinstance(prompt, str):
        texts_or_ids: Sequence[str | list[int]] = [prompt]
    elif prompt and all(isinstance(p, int) for p in prompt):
        texts_or_ids = [list(prompt)]  # type: ignore[arg-type]
    else:
        texts_or_ids = list(prompt)  # type: ignore[arg-type]
    if not texts_or_ids:
        raise InvalidRequest("'prompt' is empty.", param="prompt")
    prompts = []
    vocab_size = len(tokenizer)
    for index, item in enumerate(texts_or_ids):
        _check_text(item, "prompt" if isinstance(prompt, str) else f"prompt[{index}]")
        ids = list(tokenizer.encode(item, add_special_tokens=False)) if isinstance(item, str) else item
        if any(not 0 <= token < vocab_size for token in ids):
            raise InvalidRequest(
                f"Token ids in 'prompt' must be between 0 and {vocab_size - 1}.", param="prompt"
            )
        prompts.append(ids or [_start_token(tokenizer)])
    return prompts


def check_completion_options(body: CompletionRequest) -> None:
    if body.suffix:
        raise InvalidRequest("'suffix' (insertion) is not supported by openft.", param="suffix")
    if body.best_of is not None and body.best_of != (body.n or 1):
        raise InvalidRequest("'best_of' other than n is not supported by openft.", param="best_of")
    if body.echo and body.logprobs is not None:
        raise InvalidRequest("'echo' together with 'logprobs' is not supported by openft.", param="echo")
    check_stream_options(body)


def _stop_sequences(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    sequences = [stop] if isinstance(stop, str) else list(stop)
    if len(sequences) > MAX_STOP_SEQUENCES:
        raise InvalidRequest(f"'stop' takes at most {MAX_STOP_SEQUENCES} sequences.", param="stop")
    return tuple(s for s in sequences if s)


def _logit_bias(bias: dict[str, float] | None, vocab_size: int) -> dict[int, float]:
    result = {}
    for key, value in (bias or {}).items():
        if not key.lstrip("-").isdigit() or not 0 <= int(key) < vocab_size:
            raise InvalidRequest(
                f"Invalid key in 'logit_bias': {key!r} is not a token id.", param="logit_bias"
            )
        if not -100 <= value <= 100:
            raise InvalidRequest(
                f"Invalid value in 'logit_bias' for {key}: biases must be between -100 and 100.",
                param="logit_bias",
            )
        result[int(key)] = float(value)
    return result


def _start_token(tokenizer: Any) -> int:
    for token_id in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if isinstance(token_id, int):
            return token_id
    raise InvalidRequest("'prompt' is empty and the model has no start token.", param="prompt")
