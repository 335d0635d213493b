"""Greedy replies and exact match of a model held in memory: how training tests see what it learned.

Prompts go through `render_prompt`, the same rendering training used, and generation stops at the
end-of-turn token. A check on a training run's in-memory model, for tests only: what the server and the
evaluations answer comes from the inference engine (openft.inference).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from openft.data.render import render_prompt, stop_token_ids


@torch.no_grad()
def greedy_reply(
    model: Any,
    tokenizer: Any,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None = None,
    *,
    max_new_tokens: int = 32,
) -> str:
    """The model's most likely next assistant message for `messages`, as text."""
    prompt = render_prompt(tokenizer, messages, tools)
    device = next(model.parameters()).device
    input_ids = torch.tensor([prompt], device=device)
    stops = stop_token_ids(tokenizer)
    output = model.generate(
        input_ids=input_ids,
        attention_mask=torch.ones_like(input_ids),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=stops,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0],
    )
    new_ids = output[0, len(prompt) :].tolist()
    for i, token in enumerate(new_ids):
        if token in stops:
            new_ids = new_ids[:i]
            break
    return str(tokenizer.decode(new_ids, skip_special_tokens=True))


def exact_match(
    model: Any, tokenizer: Any, examples: Sequence[Mapping[str, Any]], *, max_new_tokens: int = 32
) -> float:
    """Share of examples whose final assistant message the model reproduces exactly from the rest."""
    if not examples:
        return 0.0
    hits = 0
    for example in examples:
        *prompt, answer = example["messages"]
        reply = greedy_reply(model, tokenizer, prompt, example.get("tools"), max_new_tokens=max_new_tokens)
        hits += reply.strip() == str(answer.get("content") or "").strip()
    return hits / len(examples)
