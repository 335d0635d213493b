"""The vLLM backend: generation runs on a vLLM OpenAI-compatible server, LoRA adapters are registered there.

openft still renders the prompt (the same `render_prompt` as training) and sends vLLM token ids, so a
model sees exactly what it was trained on. Each adapter is registered once through vLLM's runtime LoRA
API (`POST /v1/load_lora_adapter`, enabled by VLLM_ALLOW_RUNTIME_LORA_UPDATING=True) under a name derived
from its directory, so it is servable the moment its job succeeds. vLLM serves one base model; requests
for other weights (another base, a full fine-tune) go to the fallback engine. See docs/inference.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import httpx

from openft.inference.types import (
    BackendError,
    Delta,
    DeltaStream,
    Engine,
    EngineStats,
    GenerationRequest,
    ModelRef,
    TokenLogprob,
    TopToken,
)

log = logging.getLogger("openft.inference")


@dataclass(frozen=True)
class ServedBase:
    name: str  # the model id vLLM serves the base under
    path: str  # what vLLM loaded it from (`root` in its /v1/models)


class VLLMEngine:
    def __init__(
        self, url: str, *, fallback: Engine, api_key: str | None = None, timeout_s: float = 600.0
    ) -> None:
        base = url.rstrip("/")
        self.url = base if base.endswith("/v1") else base + "/v1"
        self.fallback = fallback
        self.headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = httpx.Timeout(timeout_s, connect=10.0)
        self._served: ServedBase | None = None
        self._registered: set[str] = set()  # adapter names known to be loaded in vLLM
        self._stats = EngineStats()

    def tokenizer(self, model: ModelRef) -> Any:
        return self.fallback.tokenizer(model)

    def stats(self) -> EngineStats:
        return self._stats

    def close(self) -> None:
        self.fallback.close()

    async def generate(self, request: GenerationRequest) -> DeltaStream:
        try:
            async with httpx.AsyncClient(
                base_url=self.url, headers=self.headers, timeout=self.timeout
            ) as http:
                served = await self._served_base(http)
                if os.path.realpath(served.path) != request.model.weights_path:
                    async for delta in self._fallback(request):
                        yield delta
                    return
                for attempt in (1, 2):
                    name = served.name
                    if request.model.adapter_path:
                        name = await self._register(http, request.model.adapter_path)
                    try:
                        async for delta in self._complete(http, name, request):
                            yield delta
                        return
                    except _Forgotten:
                        # vLLM restarted and lost the adapter: register it again, once.
                        self._registered.discard(name)
                        if attempt == 2 or not request.model.adapter_path:
                            raise BackendError(f"vLLM does not know the model {name}") from None
        except httpx.HTTPError as exc:
            raise BackendError(f"the vLLM server at {self.url} did not answer: {exc}") from exc

    async def _fallback(self, request: GenerationRequest) -> DeltaStream:
        stream = self.fallback.generate(request)
        try:
            async for delta in stream:
                yield delta
        finally:
            await stream.aclose()

    async def _served_base(self, http: httpx.AsyncClient) -> ServedBase:
        if self._served is None:
            response = await http.get("/models")
            _raise_for_status(response, "list vLLM's models")
            bases = [m for m in response.json().get("data", []) if not m.get("parent")]
            if not bases:
                raise BackendError(f"the vLLM server at {self.url} lists no base model")
            self._served = ServedBase(name=bases[0]["id"], path=str(bases[0].get("root") or bases[0]["id"]))
            log.info("vLLM at %s serves %s (%s)", self.url, self._served.name, self._served.path)
        return self._served

    async def _register(self, http: httpx.AsyncClient, adapter_path: str) -> str:
        name = adapter_name(adapter_path)
        if name in self._registered:
            return name
        body = {"lora_name": name, "lora_path": adapter_path}
        response = await http.post("/load_lora_adapter", json=body)
        # A vLLM that outlived an openft restart still has it: that is fine.
        if response.status_code != 200 and "already" not in response.text:
            raise BackendError(
                f"vLLM did not load the adapter {adapter_path} "
                f"({response.status_code}: {response.text[:300]}). "
                "Start vLLM with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, with a "
                "--max-lora-rank at least the adapter's rank, on a machine that sees the same path."
            )
        self._registered.add(name)
        self._stats.n_adapter_loads += 1
        return name

    async def _complete(self, http: httpx.AsyncClient, name: str, request: GenerationRequest) -> DeltaStream:
        n_tokens = [0] * request.params.n
        async with http.stream("POST", "/completions", json=completion_body(name, request)) as response:
            if response.status_code != 200:
                await response.aread()
                if response.status_code == 404:
                    raise _Forgotten()
                _raise_for_status(response, "generate on vLLM")
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line.removeprefix("data: "))
                if "error" in chunk:
                    raise BackendError(f"vLLM: {chunk['error']}")
                for choice in chunk.get("choices", []):
                    yield _delta(choice, request, n_tokens)
                await asyncio.sleep(0)


def adapter_name(adapter_path: str) -> str:
    """A stable name per adapter directory: the same across openft restarts, unique per checkpoint."""
    return "openft-" + hashlib.sha256(adapter_path.encode()).hexdigest()[:16]


def completion_body(name: str, request: GenerationRequest) -> dict[str, Any]:
    params = request.params
    return {
        "model": name,
        "prompt": request.prompt_ids,
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "n": params.n,
        "seed": params.seed,
        "presence_penalty": params.presence_penalty,
        "frequency_penalty": params.frequency_penalty,
        "logit_bias": {str(k): v for k, v in params.logit_bias.items()} or None,
        "stop": list(params.stop) or None,
        "stop_token_ids": list(request.stop_token_ids),
        # Always ask for the chosen tokens' logprobs: they also count the tokens of each choice.
        "logprobs": params.logprobs or 0,
        "skip_special_tokens": True,
        "stream": True,
        # vLLM constrains the answer itself (its structured outputs), from the same response_format.
        **({"response_format": dict(request.grammar.response_format)} if request.grammar else {}),
    }


def _delta(choice: dict[str, Any], request: GenerationRequest, n_tokens: list[int]) -> Delta:
    index = int(choice.get("index", 0))
    logprobs = choice.get("logprobs") or {}
    tokens = logprobs.get("tokens") or []
    n_tokens[index] += len(tokens)
    entries: list[TokenLogprob] = []
    if request.params.logprobs is not None:
        k = request.params.logprobs
        tops = logprobs.get("top_logprobs") or [None] * len(tokens)
        for token, logprob, top in zip(tokens, logprobs.get("token_logprobs") or [], tops, strict=False):
            ranked = sorted((top or {}).items(), key=lambda item: -item[1])[:k]
            alternatives = [TopToken(t, _bytes(t), lp) for t, lp in ranked]
            entries.append(TokenLogprob(token, _bytes(token), float(logprob), alternatives))
    finish = choice.get("finish_reason")
    return Delta(
        choice=index,
        text=choice.get("text") or "",
        logprobs=entries,
        n_tokens=n_tokens[index],
        finish_reason=None if finish is None else ("length" if finish == "length" else "stop"),
    )


def _bytes(token: str) -> list[int]:
    return list(token.encode("utf-8"))


def _raise_for_status(response: httpx.Response, doing: str) -> None:
    if response.status_code != 200:
        raise BackendError(f"could not {doing}: {response.status_code} {response.text[:300]}")


class _Forgotten(Exception):
    """vLLM answered 404 for a model name it should know."""
