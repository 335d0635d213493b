"""Next-token choice for a batch of sequences, each with its own sampling options and random stream.

Each sequence draws from its own `torch.Generator`, seeded from the request's `seed` and the choice
index, so a seeded request gives the same tokens whatever else shares its batch. Logprobs are those of
the model's own distribution (before penalties, temperature and top_p), as OpenAI reports them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from openft.inference.constrained import RowGrammars
from openft.inference.grammar import OutputGrammar
from openft.inference.types import SamplingParams

_SEED_MIX = 1_000_003  # spreads one request's choices over different streams


@dataclass
class Choice:
    token_ids: torch.Tensor  # (B,) chosen tokens
    logprobs: torch.Tensor | None  # (B,) their logprobs, when any row asked
    top_ids: torch.Tensor | None  # (B, k) most likely tokens, k = the largest top_logprobs asked
    top_logprobs: torch.Tensor | None
    # (B,) rows whose logits were not finite: their model is broken, their tokens are meaningless.
    broken: torch.Tensor | None = None


class BatchSampler:
    def __init__(
        self,
        rows: list[tuple[SamplingParams, int]],
        vocab_size: int,
        device: torch.device,
        grammars: Sequence[OutputGrammar | None] | None = None,
    ) -> None:
        """`rows`: the options of each sequence and its choice index within its request; `grammars`: what
        each sequence may write (its request's response_format), None where it writes freely."""
        self.params = [params for params, _ in rows]
        self.grammars = RowGrammars(grammars if grammars is not None else [None] * len(rows))
        self.device = device
        self.generators = [_generator(params.seed, choice) for params, choice in rows]
        self.temperature = torch.tensor([max(p.temperature, 1e-5) for p in self.params], device=device)
        self.top_p = torch.tensor([p.top_p for p in self.params], device=device)
        self.greedy = torch.tensor([p.greedy for p in self.params], device=device)
        self.any_penalty = any(p.presence_penalty or p.frequency_penalty for p in self.params)
        self.counts = torch.zeros(len(rows), vocab_size, device=device) if self.any_penalty else None
        self.presence = torch.tensor([p.presence_penalty for p in self.params], device=device)
        self.frequency = torch.tensor([p.frequency_penalty for p in self.params], device=device)
        self.bias = _bias_matrix(self.params, vocab_size, device)
        self.max_top = max((p.logprobs for p in self.params if p.logprobs is not None), default=None)

    def select(self, keep: list[int]) -> None:
        """Keep only these rows (finished sequences leave the batch)."""
        index = torch.tensor(keep, device=self.device)
        self.params = [self.params[i] for i in keep]
        self.generators = [self.generators[i] for i in keep]
        self.temperature, self.top_p, self.greedy = (
            self.temperature[index],
            self.top_p[index],
            self.greedy[index],
        )
        self.grammars.select(keep)
        self.presence, self.frequency = self.presence[index], self.frequency[index]
        if self.counts is not None:
            self.counts = self.counts[index]
        if self.bias is not None:
            self.bias = self.bias[index]

    def join(self, other: BatchSampler) -> None:
        """Append `other`'s rows (sequences that joined the batch), with their own generators and counts."""
        n_self, n_other = len(self.params), len(other.params)
        self.params = self.params + other.params
        self.generators = self.generators + other.generators
        self.temperature = torch.cat([self.temperature, other.temperature])
        self.top_p = torch.cat([self.top_p, other.top_p])
        self.greedy = torch.cat([self.greedy, other.greedy])
        self.grammars.join(other.grammars)
        self.presence = torch.cat([self.presence, other.presence])
        self.frequency = torch.cat([self.frequency, other.frequency])
        self.any_penalty = self.any_penalty or other.any_penalty
        self.counts = _stacked(self.counts, other.counts, n_self, n_other)
        self.bias = _stacked(self.bias, other.bias, n_self, n_other)
        tops = [t for t in (self.max_top, other.max_top) if t is not None]
        self.max_top = max(tops) if tops else None

    @torch.no_grad()
    def choose(self, logits: torch.Tensor) -> Choice:
        logits = logits.float()
        broken = _broken_rows(logits)
        if broken is not None:
            # Sampling NaN raises for the whole batch and argmax of NaN is garbage: the broken rows get
            # harmless logits here, and the caller fails their requests alone.
            logits = logits.masked_fill(broken[:, None], 0.0)
        logprobs = torch.log_softmax(logits, dim=-1) if self.max_top is not None else None
        scores = self._adjusted(logits)
        if self.grammars.active:
            scores = self.grammars.mask(scores)
        chosen = self._pick(scores)
        if self.grammars.active:
            self.grammars.advance(chosen.tolist())
        if self.counts is not None:
            self.counts.scatter_add_(
                1, chosen[:, None], torch.ones_like(chosen[:, None], dtype=self.counts.dtype)
            )
        if logprobs is None:
            return Choice(chosen, None, None, None, broken)
        chosen_logprobs = logprobs.gather(1, chosen[:, None]).squeeze(1)
        top_logprobs, top_ids = logprobs.topk(self.max_top, dim=-1) if self.max_top else (None, None)
        return Choice(chosen, chosen_logprobs, top_ids, top_logprobs, broken)

    def _adjusted(self, logits: torch.Tensor) -> torch.Tensor:
        if self.bias is not None:
            logits = logits + self.bias
        if self.counts is not None:
            # OpenAI's definition: minus count * frequency_penalty, minus presence_penalty if count > 0.
            logits = logits - self.counts * self.frequency[:, None]
            logits = logits - (self.counts > 0).float() * self.presence[:, None]
        return logits

    def _pick(self, scores: torch.Tensor) -> torch.Tensor:
        greedy_ids = scores.argmax(dim=-1)
        if bool(self.greedy.all()):
            return greedy_ids
        probs = torch.softmax(scores / self.temperature[:, None], dim=-1)
        probs = _nucleus(probs, self.top_p)
        sampled = torch.stack(
            [
                torch.multinomial(probs[i].cpu(), 1, generator=self.generators[i])[0]
                for i in range(probs.shape[0])
            ]
        ).to(scores.device)
        return torch.where(self.greedy, greedy_ids, sampled)


def _broken_rows(logits: torch.Tensor) -> torch.Tensor | None:
    """(B,) True where a row has a NaN or +inf logit, or no finite one (-inf alone may be a mask), or
    None when every row is sound (the common case, one reduction)."""
    finite = torch.isfinite(logits)
    if bool(finite.all()):
        return None
    return logits.isnan().any(dim=-1) | logits.isposinf().any(dim=-1) | ~finite.any(dim=-1)


def _stacked(a: torch.Tensor | None, b: torch.Tensor | None, n_a: int, n_b: int) -> torch.Tensor | None:
    """Per-row matrices of two samplers one above the other; a side without one gets zeros."""
    if a is None and b is None:
        return None
    like = a if a is not None else b
    assert like is not None
    top = a if a is not None else like.new_zeros(n_a, like.shape[1])
    bottom = b if b is not None else like.new_zeros(n_b, like.shape[1])
    return torch.cat([top, bottom])


def _nucleus(probs: torch.Tensor, top_p: torch.Tensor) -> torch.Tensor:
    """Zero the tail beyond the smallest set of tokens whose probability reaches top_p (per row)."""
    if bool((top_p >= 1.0).all()):
        return probs
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass of the tokens ranked above each one
    sorted_probs = sorted_probs.masked_fill(before >= top_p[:, None], 0.0)
    return torch.zeros_like(probs).scatter(1, order, sorted_probs)


def _generator(seed: int | None, choice: int) -> torch.Generator:
    # Sampling runs on the CPU generator: CUDA generators differ between devices, seeds should not.
    generator = torch.Generator(device="cpu")
    if seed is None:
        generator.manual_seed(random.SystemRandom().getrandbits(63))
    else:
        generator.manual_seed((seed * _SEED_MIX + choice) % (2**63))
    return generator


def _bias_matrix(params: list[SamplingParams], vocab_size: int, device: torch.device) -> torch.Tensor | None:
    if not any(p.logit_bias for p in params):
        return None
    bias = torch.zeros(len(params), vocab_size, device=device)
    for row, p in enumerate(params):
        for token_id, value in p.logit_bias.items():
            if 0 <= token_id < vocab_size:
                bias[row, token_id] = value
    return bias
