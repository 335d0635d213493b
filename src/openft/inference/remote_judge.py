"""A judge on another OpenAI-compatible server, for model graders that name a model this server does not
serve (such as the `gpt-4o-2024-08-06` of OpenAI's examples): the operator points
`OPENFT_JUDGE_BASE_URL` at a server that has it (OpenAI, vLLM, Ollama, another openft) and, where that
server wants one, sets `OPENFT_JUDGE_API_KEY` in the environment of `openft serve` and `openft worker`
(the key never travels in a job's files; training processes read it from their environment).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from openft.graders.model_graders import JudgeAnswer, JudgeError

API_KEY_ENV = "OPENFT_JUDGE_API_KEY"
TIMEOUT_S = 120.0
MAX_TOKENS = 64  # a score or a label: a short answer


class RemoteJudge:
    """A `Judge` (openft.graders.model_graders) answered by `{base_url}/chat/completions`."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        self.timeout_s = timeout_s

    def __call__(
        self, model: str, messages: Sequence[Mapping[str, str]], sampling_params: Mapping[str, Any]
    ) -> JudgeAnswer:
        body: dict[str, Any] = {
            "model": model,
            "messages": [dict(m) for m in messages],
            "temperature": sampling_params.get("temperature", 0),
            "max_completion_tokens": sampling_params.get("max_completions_tokens") or MAX_TOKENS,
        }
        for name in ("top_p", "seed"):
            if sampling_params.get(name) is not None:
                body[name] = sampling_params[name]
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            response = httpx.post(
                f"{self.base_url}/chat/completions", json=body, headers=headers, timeout=self.timeout_s
            )
        except httpx.HTTPError as exc:
            raise JudgeError(f"the judge server could not be reached: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise JudgeError(f"the judge server answered {response.status_code} for model {model!r}")
        try:
            answer = response.json()
            text = answer["choices"][0]["message"].get("content") or ""
            tokens = int((answer.get("usage") or {}).get("total_tokens") or 0)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise JudgeError("the judge server's answer is not a chat completion") from None
        return JudgeAnswer(str(text), tokens)
