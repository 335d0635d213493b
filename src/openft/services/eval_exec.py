"""Executing eval runs in the server process: sample the model for each item, grade, store.

A run is an asyncio task of the server that created it. It samples through the same inference service
as /v1/chat/completions, a few items at a time, and stores each batch of output items together with
the run's counters in one transaction, so a run that stops half way resumes where it stopped.

Ownership is a heartbeat on the run row. A server shutting down gives its unfinished runs back (clears
the heartbeat); every server looks for unfinished runs whose heartbeat is missing or stale at start and
then every `SWEEP_S`, and takes them over. So a run interrupted by a restart or a crash finishes on the
next server that comes up, with the items it already graded kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from openft.errors import NotFound, OpenFTError
from openft.evals.items import Row
from openft.graders.criteria import grade_items
from openft.graders.templates import TemplateError
from openft.inference import embeddings
from openft.inference.types import Engine
from openft.schemas.chat import ChatCompletion, ChatCompletionRequest
from openft.schemas.evals import CompletionsDataSource
from openft.services import inference
from openft.services.context import ServiceContext
from openft.services.eval_run_state import (
    Outcome,
    Plan,
    RunFailed,
    beat,
    claim_abandoned,
    finish,
    is_active,
    load_plan,
    release,
    store_outcomes,
)
from openft.services.eval_runs import render_messages
from openft.services.graders import EngineJudge

log = logging.getLogger("openft.evals")

BATCH_ITEMS = 8  # items sampled at once (the engine batches them)


@dataclass(frozen=True)
class Sampled:
    """An item sampled and waiting for its grades."""

    index: int
    row: Row
    sample: dict[str, Any] | None  # the output item's `sample` (None for a jsonl source)
    sample_ns: dict[str, Any] | None  # what `{{sample.*}}` reads
    usage: tuple[str, int, int] | None


HEARTBEAT_S = 10.0
SWEEP_S = 30.0


class EvalRunner:
    """The runs this server executes; `engine` gives the server's inference engine (made on first use)."""

    def __init__(self, ctx: ServiceContext, engine: Callable[[], Engine]) -> None:
        self.ctx = ctx
        self._engine = engine
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def start(self, run_id: str) -> None:
        if run_id in self._tasks:
            return
        task = asyncio.get_running_loop().create_task(self._execute(run_id), name=f"eval run {run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(lambda _task: self._tasks.pop(run_id, None))

    def stop_run(self, run_id: str) -> None:
        task = self._tasks.get(run_id)
        if task is not None:
            task.cancel()

    def start_sweeping(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="eval run sweeper")

    async def _sweep(self) -> None:
        while True:
            try:
                for run_id in await asyncio.to_thread(claim_abandoned, self.ctx):
                    log.info("taking over eval run %s", run_id)
                    self.start(run_id)
            except Exception:
                log.exception("looking for abandoned eval runs failed")
            await asyncio.sleep(SWEEP_S)

    async def close(self) -> None:
        """Stop every run of this server and give the unfinished ones back for the next server."""
        tasks = [t for t in (self._sweeper, *self._tasks.values()) if t is not None]
        run_ids = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.to_thread(release, self.ctx, run_ids)

    async def _execute(self, run_id: str) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(run_id))
        try:
            plan = await asyncio.to_thread(load_plan, self.ctx, run_id)
            if plan is None:
                return
            engine = self._engine() if isinstance(plan.source, CompletionsDataSource) else None
            pending = [(i, row) for i, row in enumerate(plan.rows) if i not in plan.done]
            for start in range(0, len(pending), BATCH_ITEMS):
                if not await asyncio.to_thread(is_active, self.ctx, run_id):
                    return
                batch = pending[start : start + BATCH_ITEMS]
                sampled = await asyncio.gather(*(self._one(plan, engine, i, row) for i, row in batch))
                outcomes = await self._graded(plan, list(sampled))
                await asyncio.to_thread(store_outcomes, self.ctx, plan, outcomes)
            await asyncio.to_thread(finish, self.ctx, run_id, None)
        except RunFailed as exc:
            await asyncio.to_thread(finish, self.ctx, run_id, exc)
        except Exception as exc:
            log.exception("eval run %s stopped on an unexpected error", run_id)
            failure = RunFailed("server_error", f"The run stopped on an unexpected error: {exc}")
            await asyncio.to_thread(finish, self.ctx, run_id, failure)
        finally:
            heartbeat.cancel()

    async def _heartbeat(self, run_id: str) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            await asyncio.to_thread(beat, self.ctx, run_id)

    async def _one(self, plan: Plan, engine: Engine | None, index: int, row: Row) -> Outcome | Sampled:
        """The item's sample (from the model, or the row's own for a jsonl source), or its error."""
        if not isinstance(plan.source, CompletionsDataSource):
            return Sampled(index, row, None, row.sample, None)
        assert engine is not None
        sample, sample_ns, usage = await self._sample(plan, plan.source, engine, row)
        if sample["error"] is not None:
            return Outcome(index, row.item, "error", [], sample, usage)
        return Sampled(index, row, sample, sample_ns, usage)

    async def _graded(self, plan: Plan, batch: list[Outcome | Sampled]) -> list[Outcome]:
        """Every criterion over the batch's samples at once, in a worker thread (a python grader's
        sandbox starts once per batch; a model grader's judge answers through this server's engine)."""
        sampled = [item for item in batch if isinstance(item, Sampled)]
        judge = EngineJudge(self.ctx, self._engine, plan.project, asyncio.get_running_loop())
        pairs = [(item.sample_ns, item.row.item) for item in sampled]
        graded = await asyncio.to_thread(
            grade_items, plan.criteria, pairs, judge=judge, embed=embeddings.shared_embedder
        )
        by_index = {item.index: result for item, result in zip(sampled, graded, strict=True)}
        outcomes = []
        for item in batch:
            if isinstance(item, Outcome):
                outcomes.append(item)
                continue
            result = by_index[item.index]
            if isinstance(result, TemplateError):
                error = _with_error(item.sample, "invalid_item", result.message)
                outcomes.append(Outcome(item.index, item.row.item, "error", [], error, item.usage))
                continue
            results = [
                {"name": g.name, "type": g.type, "passed": g.passed, "score": g.score, "sample": None}
                for g in result
            ]
            status = "pass" if all(g.passed for g in result) else "fail"
            outcomes.append(Outcome(item.index, item.row.item, status, results, item.sample, item.usage))
        return outcomes

    async def _sample(
        self, plan: Plan, source: CompletionsDataSource, engine: Engine, row: Row
    ) -> tuple[dict[str, Any], dict[str, Any] | None, tuple[str, int, int] | None]:
        assert source.model is not None
        sample: dict[str, Any] = {
            "input": [],
            "output": [],
            "model": source.model,
            "finish_reason": None,
            "usage": None,
            "error": None,
            **plan.sampling,
        }
        try:
            sample["input"] = render_messages(source, row.item)
            body = ChatCompletionRequest(model=source.model, messages=sample["input"], **plan.sampling)
            prepared = await asyncio.to_thread(inference.prepare_chat, self.ctx, engine, plan.project, body)
            completion = await inference.run(engine, prepared)
        except NotFound as exc:
            raise RunFailed(exc.code or "model_not_found", exc.message) from None
        except (OpenFTError, TemplateError, ValidationError) as exc:
            message = exc.message if isinstance(exc, OpenFTError | TemplateError) else str(exc)
            return {**sample, "error": {"code": "invalid_item", "message": message}}, None, None
        assert isinstance(completion, ChatCompletion)
        choice, used = completion.choices[0], completion.usage
        text = choice.message.content or ""
        sample["output"] = [{"role": "assistant", "content": text}]
        sample["finish_reason"] = choice.finish_reason
        sample["usage"] = {
            "prompt_tokens": used.prompt_tokens,
            "completion_tokens": used.completion_tokens,
            "total_tokens": used.total_tokens,
            "cached_tokens": 0,
        }
        namespace = {"output_text": text, "model": source.model, "finish_reason": choice.finish_reason}
        return sample, namespace, (source.model, used.prompt_tokens, used.completion_tokens)


def _with_error(sample: dict[str, Any] | None, code: str, message: str) -> dict[str, Any] | None:
    if sample is None:
        return None
    return {**sample, "error": {"code": code, "message": message}}
