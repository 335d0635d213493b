"""The local runner: a model answered by the inference engine that serves /v1/chat/completions.

There is one generation path. The runner builds the request the server builds for the same prompt at
temperature 0: chat cases are rendered by `openft.data.render.render_prompt` (the model's chat template,
as training renders them), prompt/completion cases are encoded as /v1/completions encodes text, and an
answer ends at the template's stop tokens. The engine applies a LoRA adapter on its base as it does for
chat, so a fine-tuned adapter and the model it was trained from share one set of loaded weights: the
base answers without the adapter, the fine-tuned model with it (no merged copy).

A model is a `ModelRef`, as the server resolves names; `model_ref` makes one from a directory (a base
model, a checkpoint, a LoRA adapter whose `base_model.json` names its base, or a full fine-tune).

The reference loss is scored by the same engine (the logprobs of the prompt followed by the reference)
on training's loss mask for the final answer (its content and end-of-turn token), so it is the
validation loss training would report for that answer. Importing this module loads no torch.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import aclosing, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from openft.comparison.runners import Answer, default_max_tokens
from openft.comparison.testset import TestCase
from openft.data.render import render_chat, render_prompt, stop_token_ids
from openft.inference import model_dirs
from openft.inference.config import EngineConfig
from openft.inference.local import LocalEngine
from openft.inference.output import collect
from openft.inference.types import Engine, GenerationRequest, ModelRef, SamplingParams
from openft.models.catalog import Catalog
from openft.models.model_dir import FALLBACK_CONTEXT_LENGTH
from openft.train.spec import STEP_PREFIX, RunLayout

T = TypeVar("T")


def locate_model(spec: str, models_dir: Path) -> Path:
    """The directory a model spec means: a directory (an `openft train` output means its `final/`) or a
    catalog name (built-in models are built on first use). Raises FileNotFoundError or UnknownModelError."""
    path = Path(spec).expanduser()
    if path.is_dir():
        run = RunLayout(path)
        if run.final_dir.is_dir():
            return run.final_dir.resolve()
        if run.checkpoints_dir.is_dir() and not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{path} has no final/ model (the run did not finish): pass one of its checkpoints, "
                f"such as {run.checkpoints_dir / (STEP_PREFIX + 'N')}"
            )
        return path.resolve()
    if spec.startswith(("/", ".", "~")):
        raise FileNotFoundError(f"{spec} is not a directory")
    return Catalog(models_dir).resolve_path(spec)


def model_ref(
    path: Path, *, name: str | None = None, context_length: int = FALLBACK_CONTEXT_LENGTH
) -> ModelRef:
    """The engine's view of a model directory, resolved as the server resolves a model name (real paths,
    so an adapter and its base share the base's loaded weights)."""
    described = model_dirs.describe(Path(path))
    return ModelRef(
        name=name or str(path),
        weights_path=os.path.realpath(described.weights_path),
        adapter_path=os.path.realpath(described.adapter_path) if described.adapter_path else None,
        tokenizer_path=os.path.realpath(described.tokenizer_path),
        context_length=context_length,
    )


@contextmanager
def local_engine(device: str = "auto") -> Iterator[LocalEngine]:
    """An engine of its own for an offline comparison, closed (its models released) on exit. No time
    limit per request: the comparison's caller bounds the whole run."""
    engine = LocalEngine(EngineConfig(device=device, max_request_s=0))
    try:
        yield engine
    finally:
        engine.close()


class LocalRunner:
    """Answers greedily through `engine`, which belongs to the caller (`close()` leaves it running).

    `deadline` (a `time.monotonic()` value): `answer` raises TimeoutError once it has passed, and the
    engine stops generating for it.
    """

    def __init__(
        self, model: ModelRef, engine: Engine, *, label: str | None = None, deadline: float | None = None
    ) -> None:
        self.model = model
        self.engine = engine
        self.label = label or model.name
        self.deadline = deadline

    def answer(self, cases: Sequence[TestCase], *, max_tokens: int | None = None) -> list[Answer]:
        tokenizer = self.engine.tokenizer(self.model)
        stops = tuple(stop_token_ids(tokenizer))
        work = []
        for case in cases:
            n_reference = len(tokenizer.encode(case.reference, add_special_tokens=False))
            budget = max_tokens or default_max_tokens(n_reference)
            work.append((_prompt_ids(tokenizer, case), budget, _scored_tokens(tokenizer, case)))
        return self._run(self._answer_all(work, stops))

    def close(self) -> None:
        """The engine is its owner's to close."""

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        if self.deadline is None:
            return asyncio.run(work)
        return asyncio.run(asyncio.wait_for(work, max(0.0, self.deadline - time.monotonic())))

    async def _answer_all(
        self, work: list[tuple[list[int], int, tuple[list[int], list[int]]]], stops: tuple[int, ...]
    ) -> list[Answer]:
        # All at once: the engine batches them, as it batches concurrent chat requests.
        answers = [self._answer_one(prompt, budget, scored, stops) for prompt, budget, scored in work]
        return list(await asyncio.gather(*answers))

    async def _answer_one(
        self, prompt: list[int], budget: int, scored: tuple[list[int], list[int]], stops: tuple[int, ...]
    ) -> Answer:
        # Greedy, as /v1/chat/completions with temperature 0 and max_tokens = budget.
        request = GenerationRequest(
            self.model, prompt, SamplingParams(max_tokens=budget, temperature=0.0), stops
        )
        (state,) = await collect(self.engine.generate(request), 1)
        loss = await self._reference_loss(scored, stops)
        return Answer(state.text, loss, state.finish_reason == "length")

    async def _reference_loss(
        self, scored: tuple[list[int], list[int]], stops: tuple[int, ...]
    ) -> float | None:
        input_ids, loss_mask = scored
        targets = [i for i in range(1, len(input_ids)) if loss_mask[i]]
        if not targets:
            return None
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=True)
        logprobs = None
        async with aclosing(
            self.engine.generate(GenerationRequest(self.model, input_ids, params, stops))
        ) as deltas:
            async for delta in deltas:
                logprobs = delta.prompt_logprobs if delta.prompt_logprobs is not None else logprobs
        if logprobs is None:  # an engine that cannot score a prompt (a vLLM backend)
            return None
        # logprobs[i - 1] is token i's, given the tokens before it.
        return -sum(logprobs[i - 1] for i in targets) / len(targets)


def _prompt_ids(tokenizer: Any, case: TestCase) -> list[int]:
    if case.prompt_text is not None:
        # As /v1/completions encodes a text prompt.
        return list(tokenizer.encode(case.prompt_text, add_special_tokens=False))
    return render_prompt(tokenizer, case.messages, case.tools)


def _scored_tokens(tokenizer: Any, case: TestCase) -> tuple[list[int], list[int]]:
    """The prompt followed by the reference, and 1 on the reference tokens that training scores."""
    prompt = _prompt_ids(tokenizer, case)
    if case.prompt_text is not None:
        # As openft.data.tokens counts a prompt/completion example: the completion and end-of-text.
        eos = [tokenizer.eos_token_id] if isinstance(tokenizer.eos_token_id, int) else []
        answer = list(tokenizer.encode(case.reference, add_special_tokens=False)) + eos
        return prompt + answer, [0] * len(prompt) + [1] * len(answer)
    reference = {"role": "assistant", "content": case.reference}
    rendered = render_chat(tokenizer, [*case.messages, reference], case.tools)
    # Earlier assistant turns are context here: only the final answer (after the prompt) is scored.
    return rendered.input_ids, [0] * len(prompt) + rendered.loss_mask[len(prompt) :]
