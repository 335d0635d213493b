"""A sequence's output: each chosen token becomes text, logprobs and a finish reason for its request.

Called by the running batch after every step; a sequence that finishes sends its last delta here, and
its request gets END once all of its choices have finished.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from openft.inference.queueing import END, Job
from openft.inference.sampling import Choice
from openft.inference.text import IncrementalDecoder, StopMatcher
from openft.inference.token_text import TokenTexts
from openft.inference.types import Delta, FinishReason, ModelOutputError, TokenLogprob, TopToken


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
    # Computed at prefill when the request asks for them; sent with the choice's first delta.
    prompt_logprobs: list[float] | None = None
    # Every token chosen for this choice, its stop token included (in-process callers read them).
    token_ids: list[int] = field(default_factory=list)


def emit(sequences: list[Sequence], choice: Choice) -> None:
    token_ids = choice.token_ids.tolist()
    logprobs = choice.logprobs.tolist() if choice.logprobs is not None else None
    top_ids = choice.top_ids.tolist() if choice.top_ids is not None else None
    top_lps = choice.top_logprobs.tolist() if choice.top_logprobs is not None else None
    broken = choice.broken.tolist() if choice.broken is not None else None
    now = time.monotonic()
    for row, seq in enumerate(sequences):
        if seq.job.cancelled.is_set():
            continue
        if broken is not None and broken[row]:
            _fail(seq, ModelOutputError(seq.job.request.model.name))
            continue
        token_id, request = token_ids[row], seq.job.request
        seq.token_ids.append(token_id)
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
        elif seq.n_tokens >= request.params.max_tokens or _past_deadline(seq.job, now):
            _finish(
                seq, "length", text + seq.stopper.feed(seq.decoder.flush()) + seq.stopper.flush(), entries
            )
        elif text or entries or seq.prompt_logprobs is not None:
            seq.job.sink(_delta(seq, text, entries))


def _finish(seq: Sequence, reason: FinishReason, text: str, entries: list[TokenLogprob]) -> None:
    seq.finish = reason
    seq.job.sink(_delta(seq, text, entries, reason))
    seq.job.remaining_sequences -= 1
    if seq.job.remaining_sequences == 0:
        seq.job.sink(END)


def _delta(
    seq: Sequence, text: str, entries: list[TokenLogprob], reason: FinishReason | None = None
) -> Delta:
    prompt_logprobs, seq.prompt_logprobs = seq.prompt_logprobs, None  # once, with the first delta
    return Delta(seq.choice, text, entries, seq.n_tokens, reason, prompt_logprobs)


def _past_deadline(job: Job, now: float) -> bool:
    # A model that never emits its end token would otherwise run to max_tokens, for minutes on a CPU.
    return job.deadline_at is not None and now >= job.deadline_at


def _fail(seq: Sequence, error: Exception) -> None:
    """The request gets the error and all of its choices leave the batch at this step."""
    seq.job.sink(error)
    seq.job.cancelled.set()


def _logprob_entry(
    texts: TokenTexts, token_id: int, logprob: float, top: list[tuple[int, float]]
) -> TokenLogprob:
    text, raw = texts.get(token_id)
    alternatives = []
    for alt_id, alt_logprob in top:
        alt_text, alt_raw = texts.get(alt_id)
        alternatives.append(TopToken(alt_text, alt_raw, alt_logprob))
    return TokenLogprob(text, raw, logprob, alternatives)
