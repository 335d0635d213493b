"""One batch from prompt to last token: left-padded prefill, then one decode step per token with a KV cache.

Every sequence (one choice of one request) has its own adapter, sampling options, stop sequences and
token budget. A sequence that finishes (or whose client went away) leaves the batch at once: its rows
are dropped from the KV cache, so the remaining steps only compute for live sequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import DynamicCache

from openft.inference.queueing import END, Job
from openft.inference.sampling import BatchSampler, Choice
from openft.inference.text import IncrementalDecoder, StopMatcher
from openft.inference.token_text import TokenTexts
from openft.inference.types import Delta, FinishReason, TokenLogprob, TopToken
from openft.inference.weights import LoadedWeights


@dataclass
class Sequence:
    job: Job
    choice: int
    adapter: str | None
    decoder: IncrementalDecoder
    stopper: StopMatcher
    texts: TokenTexts
    n_tokens: int = 0
    finish: FinishReason | None = None


def run_batch(weights: LoadedWeights, sequences: list[Sequence], device: torch.device) -> None:
    """Generate until every sequence finished or was cancelled."""
    with _Forward(weights, [s.adapter for s in sequences], device) as forward:
        _generate(forward, sequences, device)


def _generate(forward: _Forward, sequences: list[Sequence], device: torch.device) -> None:
    input_ids, mask = _left_padded([s.job.request.prompt_ids for s in sequences], device)
    positions = (mask.cumsum(dim=-1) - 1).clamp(min=0)
    cache = DynamicCache()
    sampler = BatchSampler(
        [(s.job.request.params, s.choice) for s in sequences], forward.weights.vocab_size, device
    )
    logits = forward(input_ids, mask, positions, cache)
    while True:
        choice = sampler.choose(logits)
        _emit(sequences, choice)
        keep = [i for i, s in enumerate(sequences) if s.finish is None and not s.job.cancelled.is_set()]
        if not keep:
            return
        next_ids = choice.token_ids[keep][:, None]
        if len(keep) < len(sequences):
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            mask, positions = mask[index], positions[index]
            sampler.select(keep)
            sequences = [sequences[i] for i in keep]
            forward.select(keep)
        mask = torch.cat([mask, mask.new_ones(len(keep), 1)], dim=-1)
        positions = positions[:, -1:] + 1
        logits = forward(next_ids, mask, positions, cache)


class _Forward:
    """The model call, with the base's LoRA router pointed at this batch's adapters for its duration."""

    def __init__(self, weights: LoadedWeights, adapters: list[str | None], device: torch.device) -> None:
        self.weights = weights
        self.adapters = adapters
        self.device = device

    def __enter__(self) -> _Forward:
        if self.weights.lora is not None:
            self.weights.lora.router.route(self.adapters, self.device)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.weights.lora is not None:
            self.weights.lora.router.clear()

    def select(self, keep: list[int]) -> None:
        """Rows left the batch: a mixed batch's row groups must follow."""
        self.adapters = [self.adapters[i] for i in keep]
        if self.weights.lora is not None and self.weights.lora.router.groups:
            self.weights.lora.router.route(self.adapters, self.device)

    @torch.inference_mode()
    def __call__(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any
    ) -> torch.Tensor:
        output = self.weights.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        return output.logits[:, -1]


def _left_padded(prompts: list[list[int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # Left padding keeps every sequence's last prompt token in the last column, where decoding continues.
    width = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros(len(prompts), width, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt) :] = 1
    return ids.to(device), mask.to(device)


def _emit(sequences: list[Sequence], choice: Choice) -> None:
    token_ids = choice.token_ids.tolist()
    logprobs = choice.logprobs.tolist() if choice.logprobs is not None else None
    top_ids = choice.top_ids.tolist() if choice.top_ids is not None else None
    top_lps = choice.top_logprobs.tolist() if choice.top_logprobs is not None else None
    for row, seq in enumerate(sequences):
        if seq.job.cancelled.is_set():
            continue
        token_id, request = token_ids[row], seq.job.request
        if token_id in request.stop_token_ids:
            _finish(seq, "stop", seq.stopper.feed(seq.decoder.flush()) + seq.stopper.flush(), [])
            continue
        seq.n_tokens += 1
        entries = []
        if logprobs is not None and request.params.logprobs is not None:
            k = request.params.logprobs
            top = list(zip(top_ids[row][:k], top_lps[row][:k], strict=True)) if top_ids and top_lps else []
            entries = [_logprob_entry(seq.texts, token_id, logprobs[row], top)]
        text = seq.stopper.feed(seq.decoder.add(token_id))
        if seq.stopper.stopped:
            _finish(seq, "stop", text, entries)
        elif seq.n_tokens >= request.params.max_tokens:
            _finish(
                seq, "length", text + seq.stopper.feed(seq.decoder.flush()) + seq.stopper.flush(), entries
            )
        elif text or entries:
            seq.job.sink(Delta(seq.choice, text, entries, seq.n_tokens))


def _finish(seq: Sequence, reason: FinishReason, text: str, entries: list[TokenLogprob]) -> None:
    seq.finish = reason
    seq.job.sink(Delta(seq.choice, text, entries, seq.n_tokens, finish_reason=reason))
    seq.job.remaining_sequences -= 1
    if seq.job.remaining_sequences == 0:
        seq.job.sink(END)


def _logprob_entry(
    texts: TokenTexts, token_id: int, logprob: float, top: list[tuple[int, float]]
) -> TokenLogprob:
    text, raw = texts.get(token_id)
    alternatives = []
    for alt_id, alt_logprob in top:
        alt_text, alt_raw = texts.get(alt_id)
        alternatives.append(TopToken(alt_text, alt_raw, alt_logprob))
    return TokenLogprob(text, raw, logprob, alternatives)
