"""The built-in engine on openft-tiny: KV-cached generation, batching across adapters, caches, sampling."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from openft.inference.config import EngineConfig
from openft.inference.local import LocalEngine
from openft.inference.model_dirs import adapter_bytes
from openft.inference.types import ModelLoadError, ModelRef
from tests.inference.conftest import Output, adapter_ref, base_ref, chat_request, collect, run

PROMPTS = ["Hello there", "What is the capital of Peru?"]


def test_greedy_generation_repeats_and_stops_at_max_tokens(engine: LocalEngine, tiny_model_dir: Path) -> None:
    request = chat_request(engine, base_ref(tiny_model_dir), "Hello", max_tokens=9)
    first, second = run(engine, request), run(engine, request)
    assert first.texts == second.texts
    assert first.finish == ["length"] and first.n_tokens == [9]


def test_a_batch_of_mixed_adapters_gives_each_request_its_own_answer(
    engine: LocalEngine, tiny_model_dir: Path, adapter_dirs: list[Path]
) -> None:
    models = [base_ref(tiny_model_dir), *(adapter_ref(tiny_model_dir, a) for a in adapter_dirs)]
    requests = [chat_request(engine, m, p, max_tokens=16) for m in models for p in PROMPTS]
    alone = [run(engine, r).texts[0] for r in requests]
    assert len({alone[i] for i in range(0, len(alone), len(PROMPTS))}) == len(models)  # adapters matter

    async def together() -> list[str]:
        outputs = await asyncio.gather(*(collect(engine, r) for r in requests))
        return [o.texts[0] for o in outputs]

    assert asyncio.run(together()) == alone
    stats = engine.stats()
    assert stats.n_weight_loads == {str(tiny_model_dir): 1}
    assert stats.n_adapter_loads == 3
    assert stats.n_mixed_adapter_batches >= 1 and stats.max_batch_sequences >= 4


def test_adapters_beyond_the_memory_budget_are_evicted_least_recently_used_first(
    tiny_model_dir: Path, adapter_dirs: list[Path]
) -> None:
    size = adapter_bytes(str(adapter_dirs[0]))
    engine = LocalEngine(EngineConfig(cpu_threads=1, adapter_cache_bytes=2 * size + size // 2))
    try:
        refs = [adapter_ref(tiny_model_dir, a) for a in adapter_dirs]
        first = run(engine, chat_request(engine, refs[0], "Hi")).texts
        for ref in refs[1:]:
            run(engine, chat_request(engine, ref, "Hi"))
        stats = engine.stats()
        assert stats.n_adapter_loads == 3 and stats.n_adapter_evictions == 1
        assert stats.adapter_bytes <= 2 * size + size // 2
        assert run(engine, chat_request(engine, refs[0], "Hi")).texts == first  # reloaded, same answer
        assert engine.stats().n_adapter_loads == 4
    finally:
        engine.close()


def test_a_full_fine_tune_is_served_as_a_model_of_its_own(
    engine: LocalEngine, tiny_model_dir: Path, full_model_dir: Path
) -> None:
    full = ModelRef("ft:full", str(full_model_dir), None, str(full_model_dir), 2048)
    base_text = run(engine, chat_request(engine, base_ref(tiny_model_dir), "Hi")).texts
    full_text = run(engine, chat_request(engine, full, "Hi")).texts
    assert full_text != base_text
    assert set(engine.stats().n_weight_loads) == {str(tiny_model_dir), str(full_model_dir)}


def test_a_seed_repeats_sampled_choices(engine: LocalEngine, tiny_model_dir: Path) -> None:
    request = chat_request(
        engine, base_ref(tiny_model_dir), "Hi", temperature=1.0, seed=5, n=3, max_tokens=12
    )
    first = run(engine, request)
    assert run(engine, request).texts == first.texts
    assert len(set(first.texts)) == 3  # each choice draws from its own stream
    other_seed = chat_request(
        engine, base_ref(tiny_model_dir), "Hi", temperature=1.0, seed=6, n=3, max_tokens=12
    )
    assert run(engine, other_seed).texts != first.texts


def test_output_stops_before_a_stop_sequence(engine: LocalEngine, tiny_model_dir: Path) -> None:
    options = {
        "temperature": 1.0,
        "seed": 11,
        "max_tokens": 40,
        "logit_bias": {i: 5.0 for i in range(97, 123)},
    }
    text = run(engine, chat_request(engine, base_ref(tiny_model_dir), "Hi", **options)).texts[0]
    stop = text[10:12]
    stopped = run(engine, chat_request(engine, base_ref(tiny_model_dir), "Hi", stop=(stop,), **options))
    assert stopped.texts[0] == text[: text.index(stop)]
    assert stopped.finish == ["stop"]


def test_logprobs_of_greedy_tokens_are_the_top_alternatives(
    engine: LocalEngine, tiny_model_dir: Path
) -> None:
    output = run(engine, chat_request(engine, base_ref(tiny_model_dir), "Hi", logprobs=3, max_tokens=6))
    entries = [e for d in output.deltas for e in d.logprobs]
    assert len(entries) == 6
    for entry in entries:
        assert len(entry.top) == 3 and entry.logprob <= 0
        assert entry.top[0].token == entry.token and entry.top[0].logprob == pytest.approx(entry.logprob)
        assert entry.top[0].logprob >= entry.top[1].logprob >= entry.top[2].logprob


def test_penalties_and_logit_bias_change_the_choice(engine: LocalEngine, tiny_model_dir: Path) -> None:
    model = base_ref(tiny_model_dir)
    plain = run(engine, chat_request(engine, model, "Hi", max_tokens=12)).texts[0]
    assert len(set(plain)) <= 2  # the random model repeats itself
    penalised = run(engine, chat_request(engine, model, "Hi", max_tokens=12, frequency_penalty=2.0)).texts[0]
    assert len(set(penalised)) > len(set(plain))
    biased = run(engine, chat_request(engine, model, "Hi", max_tokens=5, logit_bias={ord("Z"): 100.0})).texts[
        0
    ]
    assert biased == "ZZZZZ"


def test_closing_the_stream_frees_the_generation_slot(engine: LocalEngine, tiny_model_dir: Path) -> None:
    request = chat_request(
        engine, base_ref(tiny_model_dir), "Hi", max_tokens=2000, logit_bias={ord("a"): 100.0}
    )

    async def read_two_then_leave() -> None:
        stream = engine.generate(request)
        await anext(stream)
        await anext(stream)
        await stream.aclose()  # type: ignore[attr-defined]

    asyncio.run(read_two_then_leave())
    deadline = time.monotonic() + 1.5  # generating all 2000 tokens takes several seconds
    while engine.stats().n_running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.stats().n_running == 0
    # The engine is free for the next request.
    assert run(engine, chat_request(engine, base_ref(tiny_model_dir), "Hi", max_tokens=3)).n_tokens == [3]


def test_a_missing_adapter_fails_the_request_not_the_engine(
    engine: LocalEngine, tiny_model_dir: Path, tmp_path: Path
) -> None:
    missing = ModelRef("ft:gone", str(tiny_model_dir), str(tmp_path / "gone"), str(tiny_model_dir), 2048)
    with pytest.raises(ModelLoadError):
        run(engine, chat_request(engine, missing, "Hi"))
    assert run(engine, chat_request(engine, base_ref(tiny_model_dir), "Hi", max_tokens=2)).n_tokens == [2]


def test_requests_that_join_a_running_batch_answer_as_if_alone(
    engine: LocalEngine, tiny_model_dir: Path, adapter_dirs: list[Path]
) -> None:
    base = base_ref(tiny_model_dir)
    # Wider and narrower than the running batch's cache, on the base and on an adapter, greedy and seeded.
    questions = ["Hi", "Tell me everything you know about the history of the capital of Peru, please."]
    joiners = [
        chat_request(engine, model, question, max_tokens=16, logprobs=2)
        for model in (base, adapter_ref(tiny_model_dir, adapter_dirs[0]))
        for question in questions
    ]
    joiners.append(chat_request(engine, base, "Hi", temperature=1.0, seed=3, n=2, max_tokens=16))
    joiners.append(chat_request(engine, base, "Hi", max_tokens=16, frequency_penalty=1.5))
    alone = [run(engine, request) for request in joiners]
    running = chat_request(engine, base, "Hello", max_tokens=400, logit_bias={ord("a"): 100.0})

    async def join_mid_batch() -> list[Output]:
        stream = engine.generate(running)
        for _ in range(5):  # the batch is generating
            await anext(stream)
        outputs = await asyncio.gather(*(collect(engine, request) for request in joiners))
        # The joiners finished first; the long request goes on.
        deadline = time.monotonic() + 1
        while engine.stats().n_running != 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        assert engine.stats().n_running == 1
        await stream.aclose()  # type: ignore[attr-defined]
        return outputs

    batches_before = engine.stats().n_batches
    joined = asyncio.run(join_mid_batch())
    stats = engine.stats()
    assert stats.n_batches == batches_before + 1 and stats.n_joined >= len(joiners)
    for got, expected in zip(joined, alone, strict=True):
        assert got.texts == expected.texts and got.n_tokens == expected.n_tokens
        assert _logprobs(got) == pytest.approx(_logprobs(expected), abs=1e-4)


def _logprobs(output: Output) -> list[float]:
    return [e.logprob for d in output.deltas for e in d.logprobs] + [
        t.logprob for d in output.deltas for e in d.logprobs for t in e.top
    ]


def test_a_scheduler_thread_that_dies_fails_its_requests_and_the_next_one_starts_anew(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openft.inference.scheduler import Scheduler

    engine = LocalEngine(EngineConfig(cpu_threads=1))
    real_run_forever = Scheduler.run_forever

    def broken(self: Scheduler) -> None:
        raise ImportError("a broken install")

    monkeypatch.setattr(Scheduler, "run_forever", broken)
    try:
        # A request waiting for the dead thread gets its error instead of waiting forever.
        with pytest.raises(RuntimeError, match="the inference engine stopped: ImportError"):
            run(engine, chat_request(engine, base_ref(tiny_model_dir), "Hi", max_tokens=2))
        monkeypatch.setattr(Scheduler, "run_forever", real_run_forever)
        assert run(engine, chat_request(engine, base_ref(tiny_model_dir), "Hi", max_tokens=2)).n_tokens == [2]
    finally:
        engine.close()


def test_by_default_the_engine_generates_on_half_the_cores(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openft.inference import config

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert config.shared_cpu_threads() == 4
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert config.shared_cpu_threads() == 1  # never none
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    engine = LocalEngine(EngineConfig())  # no cpu_threads: the shared default
    try:
        assert run(engine, chat_request(engine, base_ref(tiny_model_dir), "Hi", max_tokens=2)).n_tokens == [2]
        assert engine.stats().cpu_threads == 1
    finally:
        engine.close()
    engine = LocalEngine(EngineConfig(cpu_threads=2))  # OPENFT_INFERENCE_CPU_THREADS overrides it
    try:
        run(engine, chat_request(engine, base_ref(tiny_model_dir), "Hi", max_tokens=2))
        assert engine.stats().cpu_threads == 2
    finally:
        engine.close()
