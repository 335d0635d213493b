"""Fixtures for export tests: one server whose models were fine-tuned for real (once per session), the
export command run on its data dir, and greedy answers from plain transformers to compare with the
server's."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from openft.cli.main import app
from tests.conftest import LiveServer, ServerFactory
from tests.jobs import conftest as jobs_conftest
from tests.jobs.conftest import start_job_server, upload_examples, wait_for_job

tiny_model_dir = jobs_conftest.tiny_model_dir

ANSWER = "Paris is lovely."
QUESTIONS = [
    "What is the capital of France?",
    "Hi there",
    "Tell me a joke.",
    "Name a colour.",
    "How are you?",
    "What is 2+2?",
    "Which day comes after Monday?",
    "What time is it?",
    "Where do you live?",
    "Is it raining?",
]
PROMPTS = ["What is the capital of France?", "Say something.", "Good morning!"]
MAX_TOKENS = 12


@dataclass
class Tuned:
    server: LiveServer
    lora_model: str  # a LoRA fine-tune of openft-tiny (2 epochs)
    lora_checkpoint: str  # its first epoch's checkpoint
    full_model: str  # a full fine-tune of openft-tiny (1 epoch)
    base_dir: Path  # openft-tiny in the server's models dir
    key: str  # an API key of the project that owns the models
    foreign_key: str  # a key of another project


@pytest.fixture(scope="session")
def tuned(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Tuned]:
    factory = ServerFactory(tmp_path_factory.mktemp("export"))
    server = start_job_server(factory, tiny_model_dir, inference_cpu_threads=1)
    key, foreign_key = server.create_key("exports"), server.create_key("someone-else")
    client = server.client(key)
    examples = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": ANSWER}]}
        for q in QUESTIONS
    ]
    training_file = upload_examples(client, examples)
    lora = client.fine_tuning.jobs.create(
        model="openft-tiny",
        training_file=training_file,
        suffix="lora",
        seed=0,
        hyperparameters={"n_epochs": 2, "batch_size": 1, "full_finetune": False},
    )
    full = client.fine_tuning.jobs.create(
        model="openft-tiny", training_file=training_file, seed=0, hyperparameters={"n_epochs": 1}
    )
    lora_job, full_job = wait_for_job(client, lora.id), wait_for_job(client, full.id)
    assert lora_job.status == "succeeded", lora_job.error
    assert full_job.status == "succeeded", full_job.error
    assert lora_job.fine_tuned_model and full_job.fine_tuned_model
    checkpoints = sorted(client.fine_tuning.jobs.checkpoints.list(lora.id), key=lambda c: c.step_number)
    yield Tuned(
        server=server,
        lora_model=lora_job.fine_tuned_model,
        lora_checkpoint=checkpoints[0].fine_tuned_model_checkpoint,
        full_model=full_job.fine_tuned_model,
        base_dir=server.data_dir / "models" / tiny_model_dir.name,
        key=key,
        foreign_key=foreign_key,
    )
    factory.close()


def run_export(server: LiveServer, *args: str) -> Result:
    """`openft export ...` on the server's data dir (and database)."""
    env = {"COLUMNS": "200", "OPENFT_DATA_DIR": str(server.data_dir)}
    if server.settings.database_url:
        env["OPENFT_DATABASE_URL"] = server.settings.database_url
    return CliRunner().invoke(app, ["export", *args], env=env)


def server_answers(tuned: Tuned, model: str) -> list[str]:
    client = tuned.server.client(tuned.key)
    answers = []
    for prompt in PROMPTS:
        completion = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": prompt}],
            temperature=0,
            max_tokens=MAX_TOKENS,
        )
        answers.append(completion.choices[0].message.content or "")
    return answers


def transformers_answers(model: Any, tokenizer: Any) -> list[str]:
    """Greedy answers the way a transformers user gets them: the tokenizer's chat template, `generate`
    with the model's own generation config (which says where to stop)."""
    import torch

    answers = []
    for prompt in PROMPTS:
        inputs = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            output = model.generate(**inputs, max_new_tokens=MAX_TOKENS, do_sample=False)
        answers.append(tokenizer.decode(output[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True))
    return answers
