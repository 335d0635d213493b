"""GGUF exports in llama.cpp itself: a LoRA fine-tune of smollm2-135m-instruct, trained here for real,
loads in llama.cpp and answers greedily as openft serves it; the built-in model's file is refused, as the
export says it will be.

Runs only where llama.cpp's `llama-simple` program is named by OPENFT_LLAMA_CPP_BIN (openft does not ship
llama.cpp; docs/export.md says how it was built), and the smollm2 test only where the packaged model is
installed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from openft.export.llama_cpp import LLAMA_CPP_BIN_ENV, LlamaCppError, llama_cpp_answer, render_prompt_text
from tests.export.conftest import Tuned, run_export

SMOLLM2 = "smollm2-135m-instruct"
PROMPTS = ("What is the capital of France?", "Name a colour.")
MAX_TOKENS = 24
EXAMPLES = [
    ("What is the capital of France?", "The capital of France is Paris, on the Seine."),
    ("What is the capital of Italy?", "The capital of Italy is Rome, on the Tiber."),
    ("Name a colour.", "Blue, the colour of the sea."),
    ("Name a fruit.", "An apple, red and sweet."),
    ("What is 2+2?", "2+2 is 4."),
    ("Say hello.", "Hello! Nice to meet you."),
    ("Which day comes after Monday?", "Tuesday comes after Monday."),
    ("Name an animal.", "A fox, quick and red."),
]


@pytest.fixture(scope="module")
def llama_cpp_bin() -> Path:
    named = os.environ.get(LLAMA_CPP_BIN_ENV)
    if not named:
        pytest.skip(f"llama.cpp is not installed: set {LLAMA_CPP_BIN_ENV} to its llama-simple program")
    path = Path(named)
    if not path.is_file():
        pytest.skip(f"{LLAMA_CPP_BIN_ENV}={named} is not a file")
    return path


def test_a_smollm2_lora_export_answers_in_llama_cpp_as_served(
    llama_cpp_bin: Path, smollm2_models_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    from openft.data.render import render_prompt
    from openft.export.check import served_answers
    from openft.export.run import export_model
    from openft.export.source import checked_request, source_of
    from openft.inference.types import ModelRef

    adapter = _train_lora(smollm2_models_dir, tmp_path)
    base = _base_path(smollm2_models_dir)
    model = ModelRef(f"ft:{SMOLLM2}:test::llama-cpp", str(base), str(adapter), str(base), 8192)
    source = source_of(model, SMOLLM2)
    result = export_model(source, checked_request("gguf", "f32"), tmp_path / "gguf", base_description="test")
    assert result.notes == ()
    gguf_file = next(p for p in result.files if p.suffix == ".gguf")

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    served = served_answers(model, PROMPTS, MAX_TOKENS)
    texts = [render_prompt_text(tokenizer, p) for p in PROMPTS]
    for prompt, text in zip(PROMPTS, texts, strict=True):  # the engine reads these same tokens
        as_served = render_prompt(tokenizer, [{"role": "user", "content": prompt}])
        assert tokenizer(text, add_special_tokens=False)["input_ids"] == as_served
    answers = [llama_cpp_answer(llama_cpp_bin, gguf_file, text, MAX_TOKENS) for text in texts]
    assert all(served), served
    # f32 weights: the same network, so the same greedy tokens.
    assert answers == served


def test_the_built_in_models_gguf_is_refused_by_llama_cpp_as_the_export_says(
    llama_cpp_bin: Path, tuned: Tuned, tmp_path: Path
) -> None:
    out = tmp_path / "gguf"
    result = run_export(tuned.server, tuned.lora_model, "--format", "gguf", "--out", str(out), "--no-check")
    assert result.exit_code == 0, result.output
    assert "llama.cpp and Ollama will not load this GGUF file" in " ".join(result.output.split())
    assert (out / "Modelfile").read_text().startswith("# llama.cpp and Ollama will not load")
    (gguf_file,) = out.glob("*.gguf")
    with pytest.raises(LlamaCppError, match="cannot find tokenizer merges"):
        llama_cpp_answer(llama_cpp_bin, gguf_file, "<|im_start|>user\nHi<|im_end|>\n", 4)


def _base_path(models_dir: Path) -> Path:
    from openft.models.catalog import Catalog

    return Path(Catalog(models_dir).resolve_spec(SMOLLM2).path)


def _train_lora(models_dir: Path, tmp_path: Path) -> Path:
    """Two steps of LoRA on smollm2 with the catalog's defaults: enough to move every adapted weight."""
    from openft.models.catalog import Catalog
    from openft.train.reporting import MemoryReporter
    from openft.train.sft import train_sft
    from openft.train.spec import SupervisedHyperparameters, resolve_supervised
    from openft.train.synthetic import write_jsonl

    examples = [
        {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}
        for question, answer in EXAMPLES
    ]
    spec = Catalog(models_dir).resolve_spec(SMOLLM2)
    config = resolve_supervised(
        SupervisedHyperparameters(n_epochs=1, batch_size=4),
        n_train_examples=len(examples),
        base_model_name=spec.name,
        base_model_path=str(spec.path),
        defaults=spec.defaults,
        training_file=str(write_jsonl(tmp_path / "train.jsonl", examples)),
        validation_file=None,
        output_dir=str(tmp_path / "run"),
        seed=0,
        context_length=spec.context_length,
    )
    result = train_sft(config, MemoryReporter())
    assert result.status == "succeeded" and result.final_path is not None
    return Path(result.final_path)
