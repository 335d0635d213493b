"""The alpha graders endpoints: check a grader, and score one sample with it.

Model graders (score_model, label_model) ask a judge: any model this server serves to the caller's
project (a base model or one of its `ft:` models), through the same engine as /v1/chat/completions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from openft.errors import InvalidRequest, OpenFTError
from openft.graders.model_graders import JudgeAnswer, JudgeError
from openft.graders.run import run_grader
from openft.graders.text_similarity import EMBEDDING_METRICS
from openft.graders.validate import GraderConfigError, validate_grader
from openft.inference import embeddings
from openft.inference.remote_judge import RemoteJudge
from openft.schemas.chat import ChatCompletionRequest
from openft.schemas.graders import RunGraderRequest, RunGraderResponse, ValidateGraderResponse
from openft.services import inference
from openft.services.context import Project, ServiceContext

JUDGE_MAX_TOKENS = 64  # a score or a label: a short answer
JUDGE_TIMEOUT_S = 120.0


def checked_grader(
    raw: Mapping[str, Any], *, field: str = "grader", for_reinforcement: bool = False
) -> dict[str, Any]:
    try:
        grader = validate_grader(raw, for_reinforcement=for_reinforcement)
    except GraderConfigError as exc:
        param = f"{field}.{exc.field}" if exc.field else field
        raise InvalidRequest(f"Invalid grader: {exc.message}", param=param, code="invalid_grader") from None
    require_embeddings(grader, field=field)
    return grader


def require_embeddings(grader: Mapping[str, Any], *, field: str = "grader") -> None:
    """A `cosine` text_similarity grader needs the embedding model installed: a 400 that says how."""
    if grader["type"] == "multi":
        for key, sub in grader["graders"].items():
            require_embeddings(sub, field=f"{field}.graders.{key}")
    elif grader.get("evaluation_metric") in EMBEDDING_METRICS and not embeddings.available():
        raise InvalidRequest(
            "Invalid grader: evaluation_metric 'cosine' compares sentence embeddings, and the embedding "
            f"model is not installed on this server. Install it with `{embeddings.INSTALL_HINT}`, or use "
            "another metric.",
            param=f"{field}.evaluation_metric",
            code="invalid_grader",
        )


def judge_models(grader: Mapping[str, Any], *, field: str = "grader") -> list[tuple[str, str]]:
    """(request field, model name) of every judge a checked grader asks: score_model and label_model,
    alone or inside a multi."""
    if grader["type"] in ("score_model", "label_model"):
        return [(f"{field}.model", grader["model"])]
    if grader["type"] == "multi":
        return [
            found
            for key, sub in grader["graders"].items()
            for found in judge_models(sub, field=f"{field}.graders.{key}")
        ]
    return []


def resolve_judges(
    ctx: ServiceContext, project: Project, grader: Mapping[str, Any], *, field: str = "grader"
) -> dict[str, dict[str, Any]]:
    """The judge models a grader asks, as the engine loads them ({name: ModelRef fields}), resolved as
    /v1/chat/completions resolves a model for `project`; an unknown one is a 400 naming its field."""
    judges: dict[str, dict[str, Any]] = {}
    for where, model in judge_models(grader, field=field):
        if model in judges:
            continue
        try:
            judges[model] = asdict(inference.resolve_model(ctx, project, model))
        except OpenFTError as exc:
            if ctx.settings.judge_base_url:  # the operator's judge server answers models not served here
                judges[model] = {"remote_url": ctx.settings.judge_base_url}
                continue
            raise InvalidRequest(
                f"Invalid grader: its judge model {model!r} cannot be used: {exc.message} Name a model "
                "this server serves to your project (a base model from /v1/models or one of your ft: "
                "models), or ask the operator to set OPENFT_JUDGE_BASE_URL to a server that has it.",
                param=where,
                code="invalid_grader",
            ) from None
    return judges


def validate(raw: Mapping[str, Any]) -> ValidateGraderResponse:
    return ValidateGraderResponse(grader=checked_grader(raw))


def run(
    ctx: ServiceContext,
    engine: Any,
    project: Project,
    body: RunGraderRequest,
    loop: asyncio.AbstractEventLoop,
) -> RunGraderResponse:
    """Runs in a worker thread: a python grader's sandbox and a judge's answer are waited for here;
    `loop` is the server's event loop, where the engine's generations are awaited."""
    grader = checked_grader(body.grader)
    if body.item is not None and not isinstance(body.item, dict):
        raise InvalidRequest("item must be a JSON object (the dataset line the grader reads).", param="item")
    judge = EngineJudge(ctx, lambda: engine, project, loop)
    graded = run_grader(grader, body.model_sample, body.item, judge=judge, embed=embeddings.shared_embedder)
    return RunGraderResponse.model_validate(graded)


class EngineJudge:
    """A judge that answers through the serving engine, as the caller's project sees its models.

    Called from a worker thread; the generation runs on `loop` (the server's event loop)."""

    def __init__(
        self,
        ctx: ServiceContext,
        engine: Callable[[], Any],
        project: Project,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.ctx, self.engine, self.project, self.loop = ctx, engine, project, loop

    def __call__(
        self, model: str, messages: Sequence[Mapping[str, str]], sampling_params: Mapping[str, Any]
    ) -> JudgeAnswer:
        remote = self._remote(model)
        if remote is not None:
            return remote(model, messages, sampling_params)
        try:
            request = ChatCompletionRequest.model_validate(
                {
                    "model": model,
                    "messages": list(messages),
                    "temperature": sampling_params.get("temperature", 0),
                    "top_p": sampling_params.get("top_p"),
                    "seed": sampling_params.get("seed"),
                    "max_completion_tokens": sampling_params.get("max_completions_tokens")
                    or JUDGE_MAX_TOKENS,
                }
            )
            engine = self.engine()
            prepared = inference.prepare_chat(self.ctx, engine, self.project, request)
            answer = asyncio.run_coroutine_threadsafe(inference.run(engine, prepared), self.loop)
            completion = answer.result(timeout=JUDGE_TIMEOUT_S)
        except OpenFTError as exc:
            raise JudgeError(f"the judge model {model!r} could not answer: {exc.message}") from None
        except TimeoutError:
            raise JudgeError(
                f"the judge model {model!r} did not answer within {JUDGE_TIMEOUT_S:g} s"
            ) from None
        text = completion.choices[0].message.content or ""  # type: ignore[union-attr]
        usage = completion.usage.total_tokens if completion.usage is not None else 0
        return JudgeAnswer(text, usage)

    def _remote(self, model: str) -> RemoteJudge | None:
        """The operator's judge server, for a model this server does not serve to the project."""
        base_url = self.ctx.settings.judge_base_url
        if not base_url:
            return None
        try:
            inference.resolve_model(self.ctx, self.project, model)
        except OpenFTError:
            return RemoteJudge(base_url, self.ctx.settings.judge_api_key)
        return None
