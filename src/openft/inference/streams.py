"""Async plumbing between engine output and HTTP: starting a generation early, merging, SSE framing."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Sequence

from pydantic import BaseModel

from openft.inference.types import Delta, DeltaStream

DONE = "data: [DONE]\n\n"


def sse(event: BaseModel, *, exclude: set[str] | None = None) -> str:
    return f"data: {event.model_dump_json(exclude=exclude)}\n\n"


async def started(deltas: DeltaStream) -> DeltaStream:
    """Wait for the first delta now, so that a model that cannot load fails before any response is sent.

    Returns an iterator that yields that first delta again, then the rest.
    """
    try:
        first = await anext(deltas)
    except StopAsyncIteration:
        return _empty()
    except BaseException:
        await deltas.aclose()
        raise
    return _prepend(first, deltas)


async def merged(streams: Sequence[DeltaStream], offsets: Sequence[int]) -> DeltaStream:
    """Deltas of several generations as one stream, choice indexes shifted by each stream's offset."""
    if len(streams) == 1 and offsets[0] == 0:
        async for delta in streams[0]:
            yield delta
        return
    queue: asyncio.Queue[Delta | BaseException | None] = asyncio.Queue()

    async def pump(stream: DeltaStream, offset: int) -> None:
        try:
            async for delta in stream:
                await queue.put(_shifted(delta, offset))
            await queue.put(None)
        except Exception as exc:
            await queue.put(exc)

    tasks = [asyncio.create_task(pump(s, o)) for s, o in zip(streams, offsets, strict=True)]
    try:
        n_open = len(tasks)
        while n_open:
            item = await queue.get()
            if item is None:
                n_open -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for stream in streams:
            await stream.aclose()


def _shifted(delta: Delta, offset: int) -> Delta:
    if not offset:
        return delta
    return dataclasses.replace(delta, choice=offset + delta.choice)


async def _prepend(first: Delta, rest: DeltaStream) -> DeltaStream:
    try:
        yield first
        async for delta in rest:
            yield delta
    finally:
        await rest.aclose()


async def _empty() -> DeltaStream:
    return
    yield  # an async generator that yields nothing
