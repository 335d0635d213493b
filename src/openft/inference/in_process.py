"""Generation on a model object this process already holds (the reinforcement recipe's policy), through
the serving engine's running batch and sampler, without its queue, threads or weight cache.

The rows of every request decode together; a row that ends leaves the batch at once and a waiting row
takes its place (continuous batching), so a long answer does not keep finished rows computing. Each
row samples as a chat request with the same options would (its own seeded random stream, its
response_format's grammar, its stop tokens).
"""

from __future__ import annotations

from collections.abc import Sequence as Seq
from typing import Any

import torch

from openft.inference.emit import Sequence
from openft.inference.queueing import Event, Job
from openft.inference.text import IncrementalDecoder, StopMatcher
from openft.inference.token_text import TokenTexts
from openft.inference.types import GenerationRequest
from openft.inference.weights import LoadedWeights

# Rows decoding at once: a small model on a CPU generates many rows for about the price of one.
MAX_ROWS = 32


def generate_token_ids(
    model: Any,
    tokenizer: Any,
    requests: Seq[GenerationRequest],
    device: torch.device,
    *,
    max_rows: int = MAX_ROWS,
) -> list[list[list[int]]]:
    """The token ids of every choice of every request, in order; a choice that stopped ends with its
    stop token. `model` is a transformers causal LM (or a PEFT model around one, adapters active)."""
    from openft.inference.batch import RunningBatch  # torch and transformers: only where generating

    errors: list[Exception] = []

    def sink(event: Event) -> None:
        if isinstance(event, Exception):
            errors.append(event)

    texts = TokenTexts(tokenizer)
    rows: list[list[Sequence]] = []
    for request in requests:
        job = Job(request, sink)
        rows.append(
            [
                Sequence(
                    job, choice, None, IncrementalDecoder(tokenizer), StopMatcher(request.params.stop), texts
                )
                for choice in range(request.params.n)
            ]
        )
    waiting = [sequence for choices in rows for sequence in choices]
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # LoRA layers stay in it
    batch = RunningBatch(LoadedWeights("in-process", base), device)
    while waiting or batch.sequences:
        room = max_rows - len(batch.sequences)
        if waiting and room > 0:
            batch.add(waiting[:room])
            waiting = waiting[room:]
        batch.step()
        if errors:
            batch.close()
            raise errors[0]
    return [[sequence.token_ids for sequence in choices] for choices in rows]
