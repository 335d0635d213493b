"""A running batch: sequences that decode together, one token per step, with one KV cache.

Every sequence (one choice of one request) has its own adapter, sampling options, stop sequences and
token budget. New sequences join between steps: they are prefilled on their own (left-padded among
themselves) and their cache rows are stacked under the batch's (openft.inference.kv). A sequence that
finishes, or whose client went away, leaves at once: its rows are dropped from the cache, so the
remaining steps only compute for live sequences.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from transformers import DynamicCache

from openft.inference import kv
from openft.inference.emit import Sequence, emit
from openft.inference.sampling import BatchSampler
from openft.inference.weights import LoadedWeights


class RunningBatch:
    def __init__(self, weights: LoadedWeights, device: torch.device) -> None:
        self.weights = weights
        self.device = device
        self.sequences: list[Sequence] = []
        self._cache: Any = None
        self._mask = torch.zeros(0, 0, dtype=torch.long, device=device)
        self._positions = torch.zeros(0, 1, dtype=torch.long, device=device)  # each row's newest token
        self._logits: torch.Tensor | None = None  # next-token logits of every row, not yet sampled
        self._sampler: BatchSampler | None = None

    @torch.inference_mode()
    def add(self, sequences: list[Sequence]) -> None:
        """Prefill `sequences` and make them rows of the batch; their first token comes with the next step."""
        if not sequences:
            return
        for sequence in sequences:
            if sequence.job.request.params.prompt_logprobs:
                sequence.prompt_logprobs = self._prompt_logprobs(sequence)
        ids, mask = _left_padded([s.job.request.prompt_ids for s in sequences], self.device)
        positions = (mask.cumsum(dim=-1) - 1).clamp(min=0)
        cache = DynamicCache()
        self._route([s.adapter for s in sequences])
        logits = self._forward(ids, mask, positions, cache)
        rows = [(s.job.request.params, s.choice) for s in sequences]
        grammars = [s.job.request.grammar for s in sequences]
        sampler = BatchSampler(rows, self.weights.vocab_size, self.device, grammars)
        if self._cache is None or self._sampler is None or self._logits is None:
            self._cache, self._mask, self._sampler, self._logits = cache, mask, sampler, logits
            self._positions = positions[:, -1:]
        else:
            self._mask = kv.stack(self._cache, self._mask, cache, mask)
            self._positions = torch.cat([self._positions, positions[:, -1:]])
            self._logits = torch.cat([self._logits, logits])
            self._sampler.join(sampler)
        self.sequences += sequences
        self._route([s.adapter for s in self.sequences])

    @torch.inference_mode()
    def step(self) -> None:
        """Sample every row's next token, hand it out, drop finished rows, compute the next logits."""
        assert self._sampler is not None and self._logits is not None
        choice = self._sampler.choose(self._logits)
        emit(self.sequences, choice)
        keep = [i for i, s in enumerate(self.sequences) if s.finish is None and not s.job.cancelled.is_set()]
        if not keep:
            self.close()
            return
        next_ids = choice.token_ids[keep][:, None]
        if len(keep) < len(self.sequences):
            self._select(keep)
        self._mask = torch.cat([self._mask, self._mask.new_ones(len(keep), 1)], dim=-1)
        self._positions = self._positions + 1
        self._logits = self._forward(next_ids, self._mask, self._positions, self._cache)

    def close(self) -> None:
        """Forget every row (the cache goes with them) and stop routing the base through adapters."""
        self.sequences, self._cache, self._logits, self._sampler = [], None, None, None
        if self.weights.lora is not None:
            self.weights.lora.router.clear()

    def _select(self, keep: list[int]) -> None:
        index = torch.tensor(keep, device=self.device)
        self._cache.batch_select_indices(index)
        self._mask = kv.trim(self._cache, self._mask[index])
        self._positions = self._positions[index]
        assert self._sampler is not None
        self._sampler.select(keep)
        self.sequences = [self.sequences[i] for i in keep]
        self._route([s.adapter for s in self.sequences])

    def _prompt_logprobs(self, sequence: Sequence) -> list[float]:
        """log p(prompt[i] | prompt[:i]) for i >= 1: the sequence's prompt alone, every position's logits
        (one row at a time, so a batch never holds a vocabulary of logits per prompt token)."""
        prompt = sequence.job.request.prompt_ids
        if len(prompt) < 2:
            return []
        self._route([sequence.adapter])
        ids = torch.tensor([prompt], device=self.device)
        logits = self.weights.model(input_ids=ids, use_cache=False).logits[0, :-1].float()
        chosen = logits.log_softmax(dim=-1).gather(1, ids[0, 1:, None])[:, 0]
        return [float(value) for value in chosen.tolist()]

    def _route(self, adapters: list[str | None]) -> None:
        # The base's LoRA layers read, per forward, which adapter each row uses.
        if self.weights.lora is not None:
            self.weights.lora.router.route(adapters, self.device)

    @torch.inference_mode()
    def _forward(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any
    ) -> torch.Tensor:
        model = self.weights.model
        output = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **{_cache_keyword(type(model)): cache},
        )
        return output.logits[:, -1]


_CACHE_KEYWORDS: dict[Any, str] = {}


def _cache_keyword(model_class: Any) -> str:
    """`cache`, the name newer transformers give the KV cache argument, where the model takes it;
    `past_key_values` (deprecated there, the only name before) otherwise."""
    if model_class not in _CACHE_KEYWORDS:
        parameters = inspect.signature(model_class.forward).parameters
        _CACHE_KEYWORDS[model_class] = "cache" if "cache" in parameters else "past_key_values"
    return _CACHE_KEYWORDS[model_class]


def _left_padded(prompts: list[list[int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # Left padding keeps every sequence's last prompt token in the last column, where decoding continues.
    width = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros(len(prompts), width, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt) :] = 1
    return ids.to(device), mask.to(device)
