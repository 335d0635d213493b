"""What goes into an engine and what comes out, and the interface every backend implements.

Torch-free: the API process builds these before any model is loaded.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from openft.inference.grammar import OutputGrammar

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class ModelRef:
    """A servable model as directories: base weights (or a full fine-tune) plus an optional adapter."""

    name: str
    weights_path: str
    adapter_path: str | None
    tokenizer_path: str
    context_length: int

    @property
    def group_key(self) -> str:
        """Requests with the same key can share a batch: they run on the same weights."""
        return self.weights_path


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[int, float] = field(default_factory=dict)
    # None: no logprobs; k >= 0: the chosen token's logprob plus the k most likely alternatives.
    logprobs: int | None = None
    # True: the first delta of each choice carries the logprob of every prompt token after the first
    # (how a text is scored: the reference loss of the evaluations).
    prompt_logprobs: bool = False

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass(frozen=True)
class GenerationRequest:
    model: ModelRef
    prompt_ids: list[int]
    params: SamplingParams
    # Token ids that end a choice without appearing in its text (the template's end-of-turn token).
    stop_token_ids: tuple[int, ...]
    # What the answer must follow (response_format json_schema / json_object); None: free text.
    grammar: OutputGrammar | None = None


@dataclass(frozen=True)
class TopToken:
    token: str
    bytes: list[int] | None
    logprob: float


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    bytes: list[int] | None
    logprob: float
    top: list[TopToken]


@dataclass(frozen=True)
class Delta:
    """New output of one choice. `text` is final: stop sequences are already cut out of it."""

    choice: int
    text: str
    logprobs: list[TokenLogprob]
    # Tokens generated for this choice so far (the end-of-turn token that stopped it is not counted).
    n_tokens: int
    finish_reason: FinishReason | None = None
    # With SamplingParams.prompt_logprobs, on a choice's first delta: log p(prompt[i] | prompt[:i]), i >= 1.
    prompt_logprobs: list[float] | None = None


# What engines return: closing it (aclose) cancels the generation.
DeltaStream = AsyncGenerator[Delta, None]


@dataclass
class EngineStats:
    """Counters for tests, benchmarks and logs."""

    n_weight_loads: dict[str, int] = field(default_factory=dict)
    n_adapter_loads: int = 0
    n_adapter_evictions: int = 0
    n_batches: int = 0
    # Requests that joined a batch already generating (continuous batching).
    n_joined: int = 0
    max_batch_sequences: int = 0
    n_mixed_adapter_batches: int = 0
    n_running: int = 0
    n_waiting: int = 0
    adapter_bytes: int = 0
    # Torch threads the scheduler generates with (0 until it has started).
    cpu_threads: int = 0


class ModelLoadError(Exception):
    """The model's files are gone or unreadable (deleted while a request waited, for example)."""


class ModelOutputError(Exception):
    """The model produced non-finite logits (NaN or infinity) for a request: its weights are broken,
    usually by training that diverged. Only that request fails; its batch-mates go on."""

    def __init__(self, model_name: str) -> None:
        super().__init__(
            f"The model `{model_name}` cannot be served: its weights produce non-finite values (NaN or "
            "infinity), usually because its training diverged. Re-train it with a lower "
            "learning_rate_multiplier."
        )
        self.model_name = model_name


class BackendError(Exception):
    """The generation backend failed: a vLLM server that cannot be reached or refuses the request."""


class Engine(Protocol):
    def tokenizer(self, model: ModelRef) -> Any:
        """The model's tokenizer (blocking: call it from a worker thread)."""

    def generate(self, request: GenerationRequest) -> DeltaStream:
        """Deltas of every choice as they are produced; closing the iterator cancels the generation."""

    def stats(self) -> EngineStats: ...

    def close(self) -> None: ...
