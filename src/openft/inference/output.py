"""Engine deltas -> OpenAI's response objects: ChatCompletion, ChatCompletionChunk and Completion."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field

from openft.ids import random_base62
from openft.inference.streams import DONE, sse
from openft.inference.tool_calls import ToolCallHold, split_tool_calls
from openft.inference.types import Delta, DeltaStream, TokenLogprob
from openft.schemas import chat as wire


@dataclass(frozen=True)
class ResponsePlan:
    """What the response needs besides the deltas."""

    model: str
    n_prompt_tokens: int
    n_choices: int
    logprobs: bool
    include_usage: bool = False
    parse_tool_calls: bool = False
    # Chat: the start of a forced tool call, prefilled into the prompt; each answer's text begins with it.
    prefix: str = ""
    # Completions with echo: each choice's text starts with its prompt.
    echo_texts: tuple[str, ...] = ()
    id: str = field(default_factory=lambda: random_base62(29))
    created: int = field(default_factory=lambda: int(time.time()))


@dataclass
class ChoiceState:
    text: str = ""
    logprobs: list[TokenLogprob] = field(default_factory=list)
    n_tokens: int = 0
    finish_reason: str | None = None

    def add(self, delta: Delta) -> None:
        self.text += delta.text
        self.logprobs += delta.logprobs
        self.n_tokens = delta.n_tokens
        self.finish_reason = delta.finish_reason or self.finish_reason


async def collect(deltas: DeltaStream, n_choices: int) -> list[ChoiceState]:
    states = [ChoiceState() for _ in range(n_choices)]
    async with aclosing(deltas):
        async for delta in deltas:
            states[delta.choice].add(delta)
    return states


def usage(plan: ResponsePlan, n_completion_tokens: int) -> wire.Usage:
    return wire.Usage(
        prompt_tokens=plan.n_prompt_tokens,
        completion_tokens=n_completion_tokens,
        total_tokens=plan.n_prompt_tokens + n_completion_tokens,
    )


# --- chat ------------------------------------------------------------------------------------------


def chat_completion(plan: ResponsePlan, states: list[ChoiceState]) -> wire.ChatCompletion:
    choices = []
    for index, state in enumerate(states):
        content: str | None = plan.prefix + state.text
        calls: list[wire.ToolCall] = []
        if plan.parse_tool_calls:
            content, calls = split_tool_calls(plan.prefix + state.text)
        finish = "tool_calls" if calls else (state.finish_reason or "stop")
        message = wire.AssistantMessage(content=content, tool_calls=calls or None)
        logprobs = _chat_logprobs(state.logprobs) if plan.logprobs else None
        choices.append(wire.ChatChoice(index=index, message=message, logprobs=logprobs, finish_reason=finish))  # type: ignore[arg-type]
    return wire.ChatCompletion(
        id="chatcmpl-" + plan.id,
        created=plan.created,
        model=plan.model,
        choices=choices,
        usage=usage(plan, sum(s.n_tokens for s in states)),
    )


async def chat_chunks(plan: ResponsePlan, deltas: DeltaStream) -> AsyncGenerator[str, None]:
    """Server-sent events: a role chunk per choice, content chunks, a finish chunk each, usage, [DONE]."""

    def chunk(choices: list[wire.ChunkChoice], usage_: wire.Usage | None = None) -> str:
        event = wire.ChatCompletionChunk(
            id="chatcmpl-" + plan.id, created=plan.created, model=plan.model, choices=choices, usage=usage_
        )
        return sse(event, exclude=None if plan.include_usage else {"usage"})

    holds = [ToolCallHold() for _ in range(plan.n_choices)] if plan.parse_tool_calls else []
    n_tokens = [0] * plan.n_choices
    for index in range(plan.n_choices):
        yield chunk([wire.ChunkChoice(index=index, delta=wire.ChunkDelta(role="assistant", content=""))])
        # A prefilled call opening is held like generated text (a template may put text before it).
        start = holds[index].feed(plan.prefix) if holds else plan.prefix
        if start:
            yield chunk([wire.ChunkChoice(index=index, delta=wire.ChunkDelta(content=start))])
    async with aclosing(deltas):
        async for delta in deltas:
            n_tokens[delta.choice] = delta.n_tokens
            text = holds[delta.choice].feed(delta.text) if holds else delta.text
            logprobs = _chat_logprobs(delta.logprobs) if plan.logprobs and delta.logprobs else None
            if text or logprobs:
                content = wire.ChunkDelta(content=text)
                yield chunk([wire.ChunkChoice(index=delta.choice, delta=content, logprobs=logprobs)])
            if delta.finish_reason is not None:
                finish: wire.FinishReason = delta.finish_reason
                if holds:
                    for event in _finish_tool_calls(holds[delta.choice], delta.choice):
                        finish = "tool_calls" if event.delta.tool_calls else finish
                        yield chunk([event])
                end = wire.ChunkChoice(index=delta.choice, delta=wire.ChunkDelta(), finish_reason=finish)
                yield chunk([end])
    if plan.include_usage:
        yield chunk([], usage(plan, sum(n_tokens)))
    yield DONE


def _finish_tool_calls(hold: ToolCallHold, index: int) -> list[wire.ChunkChoice]:
    text, calls = hold.finish()
    events = [wire.ChunkChoice(index=index, delta=wire.ChunkDelta(content=text))] if text else []
    for i, call in enumerate(calls):
        function = wire.DeltaFunction(name=call.function.name, arguments=call.function.arguments)
        tool_call = wire.DeltaToolCall(index=i, id=call.id, type="function", function=function)
        events.append(wire.ChunkChoice(index=index, delta=wire.ChunkDelta(tool_calls=[tool_call])))
    return events


def _chat_logprobs(entries: list[TokenLogprob]) -> wire.ChoiceLogprobs:
    return wire.ChoiceLogprobs(
        content=[
            wire.TokenLogprob(
                token=e.token,
                bytes=e.bytes,
                logprob=e.logprob,
                top_logprobs=[
                    wire.TopLogprob(token=t.token, bytes=t.bytes, logprob=t.logprob) for t in e.top
                ],
            )
            for e in entries
        ]
    )


# --- completions -----------------------------------------------------------------------------------


def completion(plan: ResponsePlan, states: list[ChoiceState]) -> wire.Completion:
    choices = []
    for index, state in enumerate(states):
        echo = plan.echo_texts[index] if plan.echo_texts else ""
        logprobs = _completion_logprobs(state.logprobs, len(echo)) if plan.logprobs else None
        finish = "length" if state.finish_reason == "length" else "stop"
        choices.append(
            wire.CompletionChoice(
                index=index, text=echo + state.text, logprobs=logprobs, finish_reason=finish
            )
        )
    return wire.Completion(
        id="cmpl-" + plan.id,
        created=plan.created,
        model=plan.model,
        choices=choices,
        usage=usage(plan, sum(s.n_tokens for s in states)),
    )


async def completion_chunks(plan: ResponsePlan, deltas: DeltaStream) -> AsyncGenerator[str, None]:
    def chunk(choices: list[wire.CompletionChoice], usage_: wire.Usage | None = None) -> str:
        event = wire.Completion(
            id="cmpl-" + plan.id, created=plan.created, model=plan.model, choices=choices, usage=usage_
        )
        return sse(event, exclude=None if plan.include_usage else {"usage"})

    offsets = [0] * plan.n_choices
    n_tokens = [0] * plan.n_choices
    for index, echo in enumerate(plan.echo_texts):
        offsets[index] = len(echo)
        yield chunk([wire.CompletionChoice(index=index, text=echo, logprobs=None, finish_reason=None)])
    async with aclosing(deltas):
        async for delta in deltas:
            index = delta.choice
            n_tokens[index] = delta.n_tokens
            logprobs = _completion_logprobs(delta.logprobs, offsets[index]) if plan.logprobs else None
            offsets[index] += len(delta.text)
            finish = delta.finish_reason
            yield chunk(
                [wire.CompletionChoice(index=index, text=delta.text, logprobs=logprobs, finish_reason=finish)]
            )
    if plan.include_usage:
        yield chunk([], usage(plan, sum(n_tokens)))
    yield DONE


def _completion_logprobs(entries: list[TokenLogprob], start: int) -> wire.CompletionLogprobs:
    # Offsets count characters: a token that is part of a character starts where that character does.
    offsets, raw = [], b""
    for entry in entries:
        offsets.append(start + len(raw.decode("utf-8", errors="ignore")))
        raw += bytes(entry.bytes or entry.token.encode())
    return wire.CompletionLogprobs(
        tokens=[e.token for e in entries],
        token_logprobs=[e.logprob for e in entries],
        top_logprobs=[{t.token: t.logprob for t in e.top} for e in entries],
        text_offset=offsets,
    )
