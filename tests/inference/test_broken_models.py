"""A model whose weights produce NaN fails its own requests with a clear error, never its batch-mates'."""

from __future__ import annotations

import asyncio
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest
from sqlalchemy import select

from openft.inference.local import LocalEngine
from openft.inference.types import GenerationRequest, ModelOutputError
from openft.store.tables import FineTunedModelRow
from tests.inference.conftest import (
    QUESTIONS,
    Output,
    Trained,
    adapter_ref,
    base_ref,
    chat_request,
    collect,
    run,
)


def _poison(adapter_dir: Path) -> None:
    """NaN in one LoRA matrix of the adapter, as a diverged training run leaves it."""
    from safetensors.torch import load_file, save_file

    path = adapter_dir / "adapter_model.safetensors"
    tensors = load_file(str(path))
    key = next(k for k in sorted(tensors) if k.endswith(".lora_B.weight"))
    tensors[key] = tensors[key].clone().fill_(float("nan"))
    save_file(tensors, str(path))


@pytest.fixture(scope="module")
def nan_adapter(tmp_path_factory: pytest.TempPathFactory, adapter_dirs: list[Path]) -> Path:
    out = tmp_path_factory.mktemp("broken") / "adapter-nan"
    shutil.copytree(adapter_dirs[0], out)
    _poison(out)
    return out


def _gathered(engine: LocalEngine, requests: list[GenerationRequest]) -> list[Output | BaseException]:
    async def together() -> list[Output | BaseException]:
        return await asyncio.gather(*(collect(engine, r) for r in requests), return_exceptions=True)

    return asyncio.run(together())


def test_a_nan_adapter_fails_alone_while_its_batch_mates_answer_as_if_alone(
    engine: LocalEngine, tiny_model_dir: Path, adapter_dirs: list[Path], nan_adapter: Path
) -> None:
    healthy = [base_ref(tiny_model_dir), *(adapter_ref(tiny_model_dir, a) for a in adapter_dirs[:2])]
    broken = adapter_ref(tiny_model_dir, nan_adapter)
    # Greedy and sampled rows on the base and on healthy adapters, the broken model in the middle.
    requests = [chat_request(engine, m, "Hi", max_tokens=10) for m in healthy]
    requests.append(chat_request(engine, healthy[1], "Hi", max_tokens=10, temperature=1.0, seed=4, n=2))
    alone = [run(engine, r) for r in requests]
    mixed = [*requests[:2], chat_request(engine, broken, "Hi", max_tokens=10), *requests[2:]]

    outputs = _gathered(engine, mixed)

    error = outputs.pop(2)
    assert isinstance(error, ModelOutputError)
    assert "`ft:adapter-nan`" in str(error) and "non-finite" in str(error)
    assert "learning_rate_multiplier" in str(error)
    for got, expected in zip(outputs, alone, strict=True):
        assert isinstance(got, Output)
        assert got.texts == expected.texts and got.finish == expected.finish
    assert engine.stats().n_mixed_adapter_batches >= 1


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_a_nan_model_alone_is_reported_greedy_or_sampled(
    engine: LocalEngine, tiny_model_dir: Path, nan_adapter: Path, temperature: float
) -> None:
    # Greedy decoding would otherwise answer argmax(NaN): token 0, over and over, without complaint.
    request = chat_request(engine, adapter_ref(tiny_model_dir, nan_adapter), "Hi", temperature=temperature)
    with pytest.raises(ModelOutputError):
        run(engine, request)
    assert run(engine, chat_request(engine, base_ref(tiny_model_dir), "Hi", max_tokens=2)).n_tokens == [2]


def _nan_model(trained: Trained, tmp_path: Path) -> str:
    """A copy of the trained LoRA model with NaN weights, registered in the server as a model of its own."""
    server, name = trained.server, "ft:openft-tiny:personal::NaNmodel"
    with server.ctx.db.session() as session:
        final = session.scalar(
            select(FineTunedModelRow).where(FineTunedModelRow.name == trained.adapters[-1])
        )
        assert final is not None
        broken_dir = tmp_path / "nan-model"
        shutil.copytree(final.path, broken_dir)
        _poison(next(p.parent for p in broken_dir.rglob("adapter_model.safetensors")))
        session.add(
            FineTunedModelRow(
                name=name,
                project_id=final.project_id,
                job_id=final.job_id,
                base_model=final.base_model,
                path=str(broken_dir),
                created_at=int(time.time()),
            )
        )
    return name


@pytest.mark.slow
def test_over_http_the_nan_model_gets_a_model_error_and_the_others_their_answers(
    trained: Trained, tmp_path: Path
) -> None:
    client = trained.server.client().with_options(max_retries=0)
    broken = _nan_model(trained, tmp_path)

    def ask(model: str, question: str) -> Any:
        messages = [{"role": "user", "content": question}]
        return client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=8)

    calls = [("openft-tiny", q) for q in QUESTIONS[:5]] + [(trained.adapters[-1], q) for q in QUESTIONS[5:]]
    alone = [ask(m, q).choices[0].message.content for m, q in calls]
    with ThreadPoolExecutor(len(calls) + 1) as pool:
        failing = pool.submit(ask, broken, QUESTIONS[0])
        answers = [pool.submit(ask, m, q) for m, q in calls]
        with pytest.raises(openai.BadRequestError) as caught:
            failing.result()
        assert [a.result().choices[0].message.content for a in answers] == alone
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["code"] == "model_error" and error["param"] == "model"
    assert error["type"] == "invalid_request_error" and broken in error["message"]

    with pytest.raises(openai.BadRequestError) as streamed:  # its first token fails before the stream starts
        client.chat.completions.create(
            model=broken, messages=[{"role": "user", "content": "Hi"}], max_tokens=8, stream=True
        )
    assert isinstance(streamed.value.body, dict) and streamed.value.body["code"] == "model_error"
