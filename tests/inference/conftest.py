"""Fixtures for inference tests: adapters and a full fine-tune made in code, engines, and one server whose
models were fine-tuned for real through the API (once per session: training is the slow part)."""

from __future__ import annotations

import asyncio
import json
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openft.data.render import render_prompt, stop_token_ids
from openft.inference.config import EngineConfig
from openft.inference.local import LocalEngine
from openft.inference.types import Delta, Engine, GenerationRequest, ModelRef, SamplingParams
from tests.conftest import LiveServer, ServerFactory
from tests.jobs import conftest as jobs_conftest
from tests.jobs.conftest import start_job_server, upload_examples, wait_for_job

# The session-wide build of openft-tiny, shared with the job tests.
tiny_model_dir = jobs_conftest.tiny_model_dir

FIXED_ANSWER = "Paris is lovely."
QUESTIONS = [
    "What is the capital of France?",
    "Hi there",
    "Tell me a joke.",
    "Which day comes after Monday?",
    "Name a colour.",
    "How are you?",
    "What is 2+2?",
    "Say something.",
    "Good morning!",
    "What time is it?",
]
# One thread: on a busy 2-core machine torch's thread pool waits on itself (see docs/inference.md).
TEST_SETTINGS: dict[str, Any] = {"inference_cpu_threads": 1}


@pytest.fixture(scope="session")
def adapter_dirs(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> list[Path]:
    """Three LoRA adapters of openft-tiny with random (not zero) B matrices, so each changes the output."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("adapters")
    dirs = []
    for seed in range(3):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
        config = LoraConfig(r=8, lora_alpha=64, target_modules="all-linear", init_lora_weights=False)
        out = root / f"adapter-{seed}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # PEFT calls a deprecated transformers API
            get_peft_model(model, config).save_pretrained(str(out))
        reference = {"name": "openft-tiny", "path": str(tiny_model_dir), "method": "lora"}
        (out / "base_model.json").write_text(json.dumps(reference))
        dirs.append(out)
    return dirs


@pytest.fixture(scope="session")
def full_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A complete model that differs from openft-tiny: what a full fine-tune leaves behind."""
    import torch
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("full") / "model"
    shutil.copytree(tiny_model_dir, out)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    torch.manual_seed(7)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    model.save_pretrained(str(out))
    return out


@pytest.fixture
def engine() -> Iterator[LocalEngine]:
    # float32 products on every CPU: tests compare with float32 transformers and PEFT models, and across
    # batches, to 1e-4 (bf16 products have tests of their own: test_bf16_products).
    engine = LocalEngine(EngineConfig(cpu_threads=1, dtype="float32"))
    yield engine
    engine.close()


def base_ref(tiny_model_dir: Path) -> ModelRef:
    path = str(tiny_model_dir)
    return ModelRef("openft-tiny", path, None, path, 2048)


def adapter_ref(tiny_model_dir: Path, adapter: Path) -> ModelRef:
    path = str(tiny_model_dir)
    return ModelRef(f"ft:{adapter.name}", path, str(adapter), path, 2048)


def chat_request(engine: Engine, model: ModelRef, text: str, **params: Any) -> GenerationRequest:
    tokenizer = engine.tokenizer(model)
    prompt = render_prompt(tokenizer, [{"role": "user", "content": text}])
    params.setdefault("max_tokens", 12)
    params.setdefault("temperature", 0.0)
    return GenerationRequest(model, prompt, SamplingParams(**params), tuple(stop_token_ids(tokenizer)))


@dataclass
class Output:
    texts: list[str]
    finish: list[str | None]
    n_tokens: list[int]
    deltas: list[Delta]


async def collect(engine: Engine, request: GenerationRequest) -> Output:
    n = request.params.n
    texts, finish, n_tokens, deltas = [""] * n, [None] * n, [0] * n, []
    async for delta in engine.generate(request):
        deltas.append(delta)
        texts[delta.choice] += delta.text
        finish[delta.choice] = delta.finish_reason or finish[delta.choice]
        n_tokens[delta.choice] = delta.n_tokens
    return Output(texts, finish, n_tokens, deltas)  # type: ignore[arg-type]


def run(engine: Engine, request: GenerationRequest) -> Output:
    return asyncio.run(collect(engine, request))


@dataclass
class Trained:
    """A live server with its worker, and the models two real fine-tuning jobs left in it."""

    server: LiveServer
    full_job: str
    full_model: str  # full fine-tune of openft-tiny on FIXED_ANSWER (3 epochs)
    full_checkpoint: str  # its epoch-2 checkpoint
    adapters: list[str]  # a LoRA job's three epoch checkpoints, oldest first (the last is its final model)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Trained]:
    factory = ServerFactory(tmp_path_factory.mktemp("trained"))
    # Room for every model these tests load, so that "loaded once" is about sharing, not eviction.
    server = start_job_server(factory, tiny_model_dir, inference_max_loaded_models=4, **TEST_SETTINGS)
    client = server.client()
    examples = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": FIXED_ANSWER}]}
        for q in QUESTIONS
    ]
    training_file = upload_examples(client, examples)
    # Both queued at once: the worker runs them back to back. Full fine-tuning learns the fixed answer
    # in 30 steps at 3x the default rate; the LoRA run learns less, but each of its epochs answers
    # differently.
    full = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=training_file,
        seed=0,
        hyperparameters={"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 3},
    )
    lora = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=training_file,
        suffix="lora",
        seed=0,
        hyperparameters={
            "n_epochs": 3,
            "batch_size": 1,
            "full_finetune": False,
            "learning_rate_multiplier": 2,
        },
    )
    full_job, lora_job = wait_for_job(client, full.id), wait_for_job(client, lora.id)
    assert full_job.status == "succeeded", full_job.error
    assert lora_job.status == "succeeded", lora_job.error
    full_checkpoints = list(client.fine_tuning.jobs.checkpoints.list(full.id))
    lora_checkpoints = sorted(client.fine_tuning.jobs.checkpoints.list(lora.id), key=lambda c: c.step_number)
    assert full_job.fine_tuned_model and lora_job.fine_tuned_model
    yield Trained(
        server=server,
        full_job=full.id,
        full_model=full_job.fine_tuned_model,
        full_checkpoint=next(c for c in full_checkpoints if c.step_number == 20).fine_tuned_model_checkpoint,
        adapters=[c.fine_tuned_model_checkpoint for c in lora_checkpoints],
    )
    factory.close()
