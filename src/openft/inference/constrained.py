"""Grammar-constrained choice of the next token: what openft.inference.grammar allows, as logit masks.

One `RowGrammars` follows the rows of a batch (each row an answer with its own matcher, or None for a
free answer): `mask` forbids, per row, every token its grammar does not allow next; `advance` feeds the
chosen tokens to the matchers. Used by the serving engine's sampler and by the reinforcement recipe's
sampling, so a job's answers follow its response_format exactly as the served model's do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from openft.inference.grammar import OutputGrammar

_BITS = torch.arange(8, dtype=torch.uint8)


class RowGrammars:
    def __init__(self, grammars: Sequence[OutputGrammar | None]) -> None:
        self.grammars = list(grammars)
        self.matchers: list[Any] = [g.matcher() if g is not None else None for g in grammars]

    @property
    def active(self) -> bool:
        return any(m is not None for m in self.matchers)

    def select(self, keep: list[int]) -> None:
        self.grammars = [self.grammars[i] for i in keep]
        self.matchers = [self.matchers[i] for i in keep]

    def join(self, other: RowGrammars) -> None:
        self.grammars += other.grammars
        self.matchers += other.matchers

    def mask(self, scores: torch.Tensor) -> torch.Tensor:
        """`scores` (B, V) with -inf wherever a row's grammar forbids the token."""
        allowed = torch.ones(scores.shape, dtype=torch.bool)
        for row, (grammar, matcher) in enumerate(zip(self.grammars, self.matchers, strict=True)):
            if matcher is not None and grammar is not None:
                allowed[row] = allowed_tokens(matcher, grammar, scores.shape[1])
        return scores.masked_fill(~allowed.to(scores.device), float("-inf"))

    def advance(self, token_ids: Sequence[int]) -> None:
        for matcher, token in zip(self.matchers, token_ids, strict=True):
            if matcher is not None and not matcher.is_stopped():
                matcher.consume_token(int(token))


def allowed_tokens(matcher: Any, grammar: OutputGrammar, vocab_size: int) -> torch.Tensor:
    """(V,) True for the tokens `matcher` allows next. A matcher that allows nothing (it cannot, unless
    the model's vocabulary and the tokenizer's disagree) leaves only the end of the turn, so an answer
    always ends."""
    packed = torch.frombuffer(bytearray(matcher.compute_bitmask()), dtype=torch.uint8)
    bits = ((packed[:, None] >> _BITS) & 1).flatten().bool()  # little-endian bits: token i is bit i
    allowed = torch.zeros(vocab_size, dtype=torch.bool)
    n = min(vocab_size, bits.numel())
    allowed[:n] = bits[:n]
    if not bool(allowed.any()):
        allowed[[t for t in grammar.stop_token_ids if t < vocab_size]] = True
    return allowed
