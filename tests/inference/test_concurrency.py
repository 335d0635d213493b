"""20 concurrent requests across 3 LoRA adapters of one base: every answer right, the base loaded once."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.inference.conftest import QUESTIONS, Trained

N_REQUESTS = 20


@pytest.mark.slow
def test_concurrent_requests_across_adapters_are_batched_and_correct(trained: Trained) -> None:
    client = trained.server.client()
    jobs = [(trained.adapters[i % 3], QUESTIONS[i % 7]) for i in range(N_REQUESTS)]

    def ask(job: tuple[str, str]) -> tuple[str | None, list[float]]:
        model, question = job
        completion = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": question}],
            temperature=0,
            max_tokens=24,
            logprobs=True,
        )
        content = completion.choices[0].logprobs.content
        return completion.choices[0].message.content, [entry.logprob for entry in content]

    # One at a time first: what each adapter answers to each question on its own.
    expected = {job: ask(job) for job in dict.fromkeys(jobs)}
    engine = trained.server.root.engine.get()
    mixed_before = engine.stats().n_mixed_adapter_batches

    with ThreadPoolExecutor(max_workers=N_REQUESTS) as pool:
        answers = list(pool.map(ask, jobs))

    for job, (text, logprobs) in zip(jobs, answers, strict=True):
        expected_text, expected_logprobs = expected[job]
        assert text == expected_text, job
        assert logprobs == pytest.approx(expected_logprobs, abs=1e-3), job
    stats = engine.stats()
    base = os.path.realpath(trained.server.settings.models_dir / "openft-tiny")
    assert stats.n_weight_loads[base] == 1
    assert stats.n_mixed_adapter_batches > mixed_before  # adapters shared a batch
    assert stats.max_batch_sequences > 1
