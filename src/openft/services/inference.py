"""Chat Completions and Completions: which directories a model name means, and a request made ready to run.

`prepare_*` run in a worker thread (database, tokenizer, chat template); `run`/`stream` are coroutines
that only await the engine. A name resolves on every request, so a model is servable the moment its row
exists and its job has succeeded, and a deleted model is gone at once.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from openft.data.render import render_prompt, stop_token_ids
from openft.errors import InvalidRequest, NotFound, OpenFTError
from openft.inference import model_dirs, output, requests, tool_choice
from openft.inference.config import MIB, EngineConfig
from openft.inference.grammar import OutputGrammar, output_grammar
from openft.inference.local import LocalEngine
from openft.inference.streams import merged, started
from openft.inference.types import (
    BackendError,
    DeltaStream,
    Engine,
    GenerationRequest,
    ModelLoadError,
    ModelOutputError,
    ModelRef,
)
from openft.inference.vllm import VLLMEngine
from openft.models.catalog import FALLBACK_CONTEXT_LENGTH, UnknownModelError
from openft.schemas.chat import ChatCompletion, ChatCompletionRequest, Completion, CompletionRequest
from openft.schemas.jobs import ACTIVE_STATUSES
from openft.services.base_models import catalog
from openft.services.checkpoint_permissions import usable_model
from openft.services.context import Project, ServiceContext
from openft.settings import Settings
from openft.store.tables import FineTunedModelRow, JobRow

log = logging.getLogger("openft.inference")


class BackendUnavailable(OpenFTError):
    """The configured generation backend (a vLLM server) failed: the operator's problem, not the caller's."""

    status_code = 502
    error_type = "server_error"


class BrokenModel(OpenFTError):
    """The requested model's weights produce NaN or infinity. A 400, not a 500: retrying cannot help
    (the SDK retries 5xx), and the fix, re-training the model, is the caller's."""

    status_code = 400

    def __init__(self, exc: ModelOutputError) -> None:
        super().__init__(str(exc), param="model", code="model_error")


@dataclass(frozen=True)
class Prepared:
    requests: list[GenerationRequest]
    plan: output.ResponsePlan
    chat: bool


def engine_config(settings: Settings) -> EngineConfig:
    """The built-in engine's settings (the server's engine, and a job evaluation's own)."""
    return EngineConfig(
        device=settings.inference_device,
        dtype=settings.inference_dtype,
        max_loaded_models=settings.inference_max_loaded_models,
        adapter_cache_bytes=settings.inference_adapter_cache_mb * MIB,
        max_batch_sequences=settings.inference_max_batch_sequences,
        max_batch_tokens=settings.inference_max_batch_tokens,
        cpu_threads=settings.inference_cpu_threads,
        max_request_s=settings.inference_max_request_s,
    )


def new_engine(settings: Settings) -> Engine:
    """The configured backend. Cheap: models load when the first request for them arrives."""
    local = LocalEngine(engine_config(settings))
    if settings.inference_backend == "local":
        return local
    if settings.inference_backend == "vllm" and settings.inference_vllm_url:
        # Models the vLLM server cannot serve (other bases, full fine-tunes) fall back to the local engine.
        engine: Engine = VLLMEngine(
            settings.inference_vllm_url, api_key=settings.inference_vllm_api_key, fallback=local
        )
        return engine
    raise ValueError(
        f"OPENFT_INFERENCE_BACKEND={settings.inference_backend!r}: use 'local', or 'vllm' together with "
        "OPENFT_INFERENCE_VLLM_URL"
    )


def resolve_model(ctx: ServiceContext, project: Project, name: str) -> ModelRef:
    if name.startswith("ft:"):
        return _fine_tuned(ctx, project, name)
    try:
        entry = catalog(ctx).get(name)
    except UnknownModelError:
        raise _not_found(name) from None
    path = os.path.realpath(catalog(ctx).resolve_path(name))  # builds a built-in model on first use
    return ModelRef(name, path, None, path, entry.context_length)


def prepare_chat(
    ctx: ServiceContext, engine: Engine, project: Project, body: ChatCompletionRequest
) -> Prepared:
    requests.check_chat_options(body)
    choice = tool_choice.tool_choice(body)
    messages, tools = requests.chat_messages(body), requests.chat_tools(body)
    model = resolve_model(ctx, project, body.model)
    tokenizer = _tokenizer(engine, model)
    if not getattr(tokenizer, "chat_template", None):
        raise InvalidRequest(
            f"The model `{body.model}` has no chat template: use /v1/completions with a text prompt.",
            param="model",
        )
    try:
        prompt = render_prompt(tokenizer, messages, tools)
    except Exception as exc:  # the template's own checks (roles, order) raise plain errors
        raise InvalidRequest(
            f"The messages cannot be rendered for this model: {exc}", param="messages"
        ) from exc
    # A forced tool call starts the answer; its tokens count as prompt.
    prefill = tool_choice.prefill_ids(tokenizer, messages, tools, choice)
    prompt = prompt + prefill
    max_tokens = body.max_completion_tokens or body.max_tokens
    budget = requests.completion_budget(
        max_tokens,
        len(prompt),
        model.context_length,
        prompt_param="messages",
        default=ctx.settings.inference_default_max_tokens,
    )
    logprobs = (body.top_logprobs or 0) if body.logprobs else None
    params = requests.sampling_params(body, max_tokens=budget, logprobs=logprobs, vocab_size=len(tokenizer))
    plan = output.ResponsePlan(
        model=body.model,
        n_prompt_tokens=len(prompt),
        n_choices=params.n,
        logprobs=logprobs is not None,
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
        parse_tool_calls=bool(tools) and choice.parses,
        prefix=tokenizer.decode(prefill, skip_special_tokens=False) if prefill else "",
    )
    stops = tuple(stop_token_ids(tokenizer))
    grammar = _answer_grammar(body, tokenizer, model, stops)
    request = GenerationRequest(model, prompt, params, stops, grammar)
    return Prepared([request], plan, chat=True)


def _answer_grammar(
    body: ChatCompletionRequest, tokenizer: Any, model: ModelRef, stops: tuple[int, ...]
) -> OutputGrammar | None:
    """The grammar a response_format asks of the answer (None for text)."""
    if body.response_format is None or body.response_format.type == "text":
        return None
    if body.tools:
        raise InvalidRequest(
            "openft cannot combine 'tools' with a JSON 'response_format' yet: send one or the other.",
            param="response_format",
        )
    return output_grammar(
        body.response_format.model_dump(exclude_none=True),
        tokenizer,
        tokenizer_key=model.tokenizer_path,
        stop_token_ids=stops,
    )


def prepare_completion(
    ctx: ServiceContext, engine: Engine, project: Project, body: CompletionRequest
) -> Prepared:
    requests.check_completion_options(body)
    model = resolve_model(ctx, project, body.model)
    tokenizer = _tokenizer(engine, model)
    prompts = requests.completion_prompts(body, tokenizer)
    logprobs = body.logprobs
    batch = []
    for prompt in prompts:
        budget = requests.completion_budget(
            body.max_tokens or 16, len(prompt), model.context_length, prompt_param="prompt"
        )
        params = requests.sampling_params(
            body, max_tokens=budget, logprobs=logprobs, vocab_size=len(tokenizer)
        )
        batch.append(GenerationRequest(model, prompt, params, tuple(stop_token_ids(tokenizer))))
    n = batch[0].params.n
    echo = tuple(tokenizer.decode(p) for p in prompts for _ in range(n)) if body.echo else ()
    plan = output.ResponsePlan(
        model=body.model,
        n_prompt_tokens=sum(len(p) for p in prompts),
        n_choices=n * len(prompts),
        logprobs=logprobs is not None,
        include_usage=bool(body.stream_options and body.stream_options.include_usage),
        echo_texts=echo,
    )
    return Prepared(batch, plan, chat=False)


async def run(engine: Engine, prepared: Prepared) -> ChatCompletion | Completion:
    try:
        states = await output.collect(await _start(engine, prepared), prepared.plan.n_choices)
    except ModelOutputError as exc:
        raise BrokenModel(exc) from exc
    if prepared.chat:
        return output.chat_completion(prepared.plan, states)
    return output.completion(prepared.plan, states)


async def stream(engine: Engine, prepared: Prepared) -> AsyncGenerator[str, None]:
    """The SSE body. Started before it is returned: a model that cannot load is a 404, not a broken stream."""
    deltas = await _start(engine, prepared)
    chunks = output.chat_chunks if prepared.chat else output.completion_chunks
    return _guarded(chunks(prepared.plan, deltas))


async def _start(engine: Engine, prepared: Prepared) -> DeltaStream:
    streams: list[DeltaStream] = []
    try:
        for request in prepared.requests:
            streams.append(await started(engine.generate(request)))
    except (ModelLoadError, BackendError, ModelOutputError) as exc:
        for opened in streams:
            await opened.aclose()
        if isinstance(exc, ModelOutputError):
            raise BrokenModel(exc) from exc
        if isinstance(exc, BackendError):
            raise BackendUnavailable(str(exc)) from exc
        raise _not_found(prepared.plan.model) from exc
    offsets = [i * prepared.requests[0].params.n for i in range(len(streams))]
    return merged(streams, offsets)


async def _guarded(chunks: AsyncGenerator[str, None]) -> AsyncGenerator[str, None]:
    """Once a stream has started, an error can only be reported inside it (as OpenAI does)."""
    async with aclosing(chunks):
        try:
            async for chunk in chunks:
                yield chunk
        except ModelOutputError as exc:
            error = BrokenModel(exc).envelope()["error"]
            yield f"data: {json.dumps({'error': error})}\n\n"
        except Exception as exc:
            log.exception("generation failed after the stream started")
            known = isinstance(exc, ModelLoadError | BackendError)
            message = str(exc) if known else "The server had an error while generating."
            error = {"message": message, "type": "server_error", "param": None, "code": None}
            yield f"data: {json.dumps({'error': error})}\n\n"


def _fine_tuned(ctx: ServiceContext, project: Project, name: str) -> ModelRef:
    with ctx.db.session() as session:
        row = usable_model(session, project.id, name)  # its own, or shared with it
        job = _unfinished_job(session, project, name, row)
        found = (row.path, row.base_model) if row is not None else None
    if job is not None:
        raise NotFound(
            f"The model `{name}` is not ready yet: its fine-tuning job {job[0]} is {job[1]}. "
            "It can be used once the job has succeeded.",
            param="model",
            code="model_not_ready",
        )
    if found is None:
        raise _not_found(name)
    path, base_model = found
    try:
        described = model_dirs.describe(Path(path))
    except (FileNotFoundError, ValueError, KeyError):
        raise _not_found(name) from None
    return ModelRef(
        name=name,
        weights_path=os.path.realpath(described.weights_path),
        adapter_path=os.path.realpath(described.adapter_path) if described.adapter_path else None,
        tokenizer_path=os.path.realpath(described.tokenizer_path),
        context_length=_context_length(ctx, base_model),
    )


def _unfinished_job(
    session: Any, project: Project, name: str, row: FineTunedModelRow | None
) -> tuple[str, str] | None:
    """(job id, status) when the model's job is still going: by the row, or by the name's 8-character id."""
    if row is not None:
        job = session.scalar(select(JobRow).where(JobRow.id == row.job_id))
    else:
        parts = name.split(":")
        if len(parts) < 5 or not parts[4]:
            return None
        job = session.scalar(
            select(JobRow).where(JobRow.project_id == project.id, JobRow.model_short_id == parts[4])
        )
    if job is None or job.status not in ACTIVE_STATUSES:
        return None
    return job.id, job.status


def _context_length(ctx: ServiceContext, base_model: str) -> int:
    try:
        return catalog(ctx).get(base_model).context_length
    except UnknownModelError:
        return FALLBACK_CONTEXT_LENGTH


def _tokenizer(engine: Engine, model: ModelRef) -> Any:
    try:
        return engine.tokenizer(model)
    except ModelLoadError:
        raise _not_found(model.name) from None


def _not_found(name: str) -> NotFound:
    # OpenAI's wording for chat.completions with a model that does not exist (or was deleted).
    return NotFound(
        f"The model `{name}` does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )
