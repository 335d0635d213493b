"""The judge of a reinforcement run's model graders (score_model, label_model): the models the job's
grader names, answered by an inference engine of the recipe's own.

The server resolved each judge's name for the job's project when the job started (a base model or one
of its `ft:` models, as /v1/chat/completions resolves it) and passed the directories; here they are
loaded by the same engine code that serves chat, rendered with the judge's chat template, and answered
as /v1/chat/completions would answer the grader's messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from openft.data.render import render_prompt, stop_token_ids
from openft.graders.model_graders import JudgeAnswer, JudgeError
from openft.inference.config import EngineConfig
from openft.inference.local import LocalEngine
from openft.inference.output import collect
from openft.inference.remote_judge import RemoteJudge
from openft.inference.types import GenerationRequest, ModelRef, SamplingParams

# As the graders endpoints answer a judge (services.graders): a score or a label is a short answer.
JUDGE_MAX_TOKENS = 64


class RecipeJudge:
    """A `Judge` (openft.graders.model_graders) over the run's judge models; `close()` releases them."""

    def __init__(self, judges: Mapping[str, Mapping[str, Any]], device: str = "auto") -> None:
        # Judges this server does not serve are asked of the operator's judge server (its key comes
        # from this process's environment).
        self.remote = {
            name: RemoteJudge(fields["remote_url"])
            for name, fields in judges.items()
            if "remote_url" in fields
        }
        self.models = {name: ModelRef(**fields) for name, fields in judges.items() if name not in self.remote}
        # The recipe's own thread count: the judge answers between training's steps, never beside them.
        self.engine = LocalEngine(
            EngineConfig(device=device, max_request_s=0, cpu_threads=torch.get_num_threads())
        )

    def __call__(
        self, model: str, messages: Sequence[Mapping[str, str]], sampling_params: Mapping[str, Any]
    ) -> JudgeAnswer:
        if model in self.remote:
            return self.remote[model](model, messages, sampling_params)
        ref = self.models.get(model)
        if ref is None:
            raise JudgeError(f"the judge model {model!r} was not resolved for this job")
        tokenizer = self.engine.tokenizer(ref)
        prompt = render_prompt(tokenizer, [dict(m) for m in messages], None)
        params = SamplingParams(
            max_tokens=int(sampling_params.get("max_completions_tokens") or JUDGE_MAX_TOKENS),
            temperature=float(sampling_params.get("temperature") or 0.0),
            top_p=float(sampling_params.get("top_p") or 1.0),
            seed=sampling_params.get("seed"),
        )
        request = GenerationRequest(ref, prompt, params, tuple(stop_token_ids(tokenizer)))
        try:
            (state,) = asyncio.run(collect(self.engine.generate(request), 1))
        except Exception as exc:  # the engine's failure is the grader's error flag, not the job's
            raise JudgeError(f"the judge model {model!r} could not answer: {exc}") from None
        return JudgeAnswer(state.text, len(prompt) + state.n_tokens)

    def close(self) -> None:
        self.engine.close()
