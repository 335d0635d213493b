"""Text-similarity scores for the `text_similarity` grader: small pure functions, each in [0, 1].

Word metrics (BLEU, GLEU, ROUGE) use one tokenisation: lower-cased runs of letters and digits.
`fuzzy_match` works on characters. Definitions:

- fuzzy_match: 2·LCS(a, b) / (|a| + |b|) over characters (the normalised Indel similarity; 1.0 when
  both are empty).
- bleu: sentence BLEU-4, uniform weights, brevity penalty; add-one smoothing for 2- to 4-grams
  (Lin & Och, 2004), so a short answer without a matching 4-gram is not scored 0.
- gleu: Google-BLEU (Wu et al., 2016): min(precision, recall) over all 1- to 4-gram matches.
- rouge_n (n = 1..5): F1 of clipped n-gram overlap.
- rouge_l: F1 of the longest common word subsequence.
- meteor: NLTK's METEOR (exact, stem and WordNet-synonym matches; openft.graders.meteor).
- cosine: the cosine similarity of the two texts' sentence embeddings (all-MiniLM-L6-v2, through the
  `Embedder` the caller passes in: graders load no model themselves).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Protocol

from openft.graders import meteor
from openft.graders.outcome import ErrorFlags, Outcome
from openft.graders.sample import Sample, render_pair

_WORD = re.compile(r"[0-9a-z]+")


class Embedder(Protocol):
    """Unit-length sentence embeddings of `texts`, one vector each."""

    def __call__(self, texts: Sequence[str]) -> list[list[float]]: ...


class EmbeddingUnavailable(Exception):
    """The embedding model could not answer (not installed, failed to load)."""


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def lcs_length(a: Sequence[object], b: Sequence[object]) -> int:
    """Length of the longest common subsequence, bit-parallel over `a` (one big integer per row)."""
    if not a or not b:
        return 0
    masks: dict[object, int] = {}
    for i, symbol in enumerate(a):
        masks[symbol] = masks.get(symbol, 0) | (1 << i)
    full = (1 << len(a)) - 1
    row = full
    for symbol in b:
        matched = row & masks.get(symbol, 0)
        row = ((row + matched) | (row - matched)) & full
    return len(a) - row.bit_count()


def fuzzy_match(output: str, reference: str) -> float:
    if not output and not reference:
        return 1.0
    return 2 * lcs_length(output, reference) / (len(output) + len(reference))


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _overlap(output: Sequence[str], reference: Sequence[str], n: int) -> tuple[int, int, int]:
    """(clipped matches, n-grams in output, n-grams in reference)."""
    out, ref = _ngrams(output, n), _ngrams(reference, n)
    return sum((out & ref).values()), sum(out.values()), sum(ref.values())


def _f1(matches: int, n_output: int, n_reference: int) -> float:
    if matches == 0:
        return 0.0
    precision, recall = matches / n_output, matches / n_reference
    return 2 * precision * recall / (precision + recall)


def rouge_n(output: str, reference: str, n: int) -> float:
    return _f1(*_overlap(words(output), words(reference), n))


def rouge_l(output: str, reference: str) -> float:
    out, ref = words(output), words(reference)
    return _f1(lcs_length(out, ref), len(out), len(ref))


def bleu(output: str, reference: str, max_n: int = 4) -> float:
    out, ref = words(output), words(reference)
    if not out or not ref:
        return 0.0
    log_precision = 0.0
    for n in range(1, max_n + 1):
        matches, n_output, _ = _overlap(out, ref, n)
        if n == 1:
            if matches == 0:
                return 0.0
            log_precision += math.log(matches / n_output)
        else:
            log_precision += math.log((matches + 1) / (n_output + 1))
    brevity = 1.0 if len(out) > len(ref) else math.exp(1 - len(ref) / len(out))
    return brevity * math.exp(log_precision / max_n)


def gleu(output: str, reference: str, max_n: int = 4) -> float:
    out, ref = words(output), words(reference)
    matches = n_output = n_reference = 0
    for n in range(1, max_n + 1):
        m, o, r = _overlap(out, ref, n)
        matches, n_output, n_reference = matches + m, n_output + o, n_reference + r
    if n_output == 0 or n_reference == 0:
        return 0.0
    return min(matches / n_output, matches / n_reference)


METRICS: dict[str, Callable[[str, str], float]] = {
    "fuzzy_match": fuzzy_match,
    "bleu": bleu,
    "gleu": gleu,
    **{f"rouge_{n}": partial(rouge_n, n=n) for n in range(1, 6)},
    "rouge_l": rouge_l,
    "meteor": lambda output, reference: meteor.meteor(words(output), words(reference)),
}
# Metrics that need a sentence-embedding model, which the caller provides.
EMBEDDING_METRICS = ("cosine",)


def cosine(output: str, reference: str, embed: Embedder) -> float:
    a, b = embed([output, reference])
    return sum(x * y for x, y in zip(a, b, strict=True))


def grade(
    grader: Mapping[str, Any], sample: Sample, item: Mapping[str, Any] | None, embed: Embedder | None = None
) -> Outcome:
    """The grader's reward: the metric between its rendered `input` and `reference`."""
    rendered = render_pair(grader, sample, item)
    if isinstance(rendered, ErrorFlags):
        return Outcome(0.0, rendered)
    output, reference = rendered
    metric = grader["evaluation_metric"]
    if metric in EMBEDDING_METRICS:
        try:
            if embed is None:
                raise EmbeddingUnavailable("no embedding model was given to this grader")
            return Outcome(cosine(output, reference, embed))
        except EmbeddingUnavailable as exc:
            return Outcome.failed(model_grader_server_error=True, model_grader_server_error_details=str(exc))
    try:
        return Outcome(METRICS[metric](output, reference))
    except meteor.WordNetUnavailable:  # validated where WordNet was, graded where it is not
        return Outcome.failed(other_error=True)
