"""What an evaluation needs from a model: answers to test prompts and, where it can, the reference's loss.

Two implementations: `openft.comparison.local_runner.LocalRunner` (the inference engine in this process:
greedy answers and the reference loss) and `openft.comparison.sdk_runner.SdkRunner` (a running openft
server through the openai SDK: answers only). Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from openft.comparison.testset import TestCase

# Answers longer than this are cut: a model that never stops must not stall an evaluation.
MAX_TOKENS_CAP = 512


@dataclass(frozen=True)
class Answer:
    text: str
    # Mean cross-entropy (nats per token) of the reference answer under the model, on the tokens training
    # puts loss on; None when the runner cannot compute it (the SDK runner).
    reference_loss: float | None = None
    # The answer hit its token budget instead of ending its turn.
    truncated: bool = False


class ModelRunner(Protocol):
    """A model that answers test cases; `label` names it in reports (a model name or a path)."""

    label: str

    def answer(self, cases: Sequence[TestCase], *, max_tokens: int | None = None) -> list[Answer]:
        """One answer per case, in order, generated greedily (temperature 0).

        `max_tokens` None: each case gets `default_max_tokens` of its reference's token count.
        """
        ...

    def close(self) -> None:
        """Free what the runner holds (model weights, connections)."""
        ...


def default_max_tokens(n_reference_tokens: int) -> int:
    """Room for an answer twice as long as the reference, plus a little, within MAX_TOKENS_CAP."""
    return min(MAX_TOKENS_CAP, 2 * n_reference_tokens + 16)
