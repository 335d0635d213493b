"""The export check: the exported model, loaded with plain transformers (and PEFT), answers a few prompts
greedily; its answers are compared with the served model's answers from openft's inference engine.

`merged` and `peft` must agree exactly. GGUF stores weights at the outtype's precision, so its check
reports how many answers agree and the share of answer tokens that agree (common prefix over the longer
answer): f32 agrees exactly, f16 and bf16 nearly, q8_0 closely.
"""

from __future__ import annotations

import asyncio
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openft.data.render import render_prompt, stop_token_ids
from openft.export.source import ExportSource
from openft.inference.types import GenerationRequest, ModelRef, SamplingParams

DEFAULT_PROMPTS = (
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "How do I make a cup of tea?",
)
DEFAULT_MAX_TOKENS = 32


@dataclass(frozen=True)
class PromptCheck:
    prompt: str
    served: str
    exported: str
    token_agreement: float  # 1.0: the same tokens

    @property
    def agree(self) -> bool:
        return self.served == self.exported


@dataclass(frozen=True)
class CheckResult:
    format: str
    loaded_with: str  # how the exported model was loaded, for the report
    rows: list[PromptCheck]

    @property
    def n_agree(self) -> int:
        return sum(row.agree for row in self.rows)

    @property
    def token_agreement(self) -> float:
        return sum(row.token_agreement for row in self.rows) / len(self.rows) if self.rows else 1.0

    @property
    def passed(self) -> bool:
        """Exact agreement, except GGUF whose quantized weights may move a later token."""
        return self.format == "gguf" or self.n_agree == len(self.rows)


def check_export(
    source: ExportSource,
    export_format: str,
    out_dir: Path,
    *,
    prompts: tuple[str, ...] = DEFAULT_PROMPTS,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> CheckResult:
    served = served_answers(source.model, prompts, max_tokens)
    model, tokenizer, loaded_with = load_exported(source, export_format, out_dir)
    exported = [greedy_answer(model, tokenizer, prompt, max_tokens) for prompt in prompts]
    served_tokenizer = _tokenizer(source.model.tokenizer_path)
    rows = [
        PromptCheck(prompt, a, b, token_agreement(served_tokenizer, a, b))
        for prompt, a, b in zip(prompts, served, exported, strict=True)
    ]
    return CheckResult(format=export_format, loaded_with=loaded_with, rows=rows)


def served_answers(model: ModelRef, prompts: tuple[str, ...], max_tokens: int) -> list[str]:
    """Greedy answers from the engine that serves /v1/chat/completions (CPU, float32)."""
    from openft.inference.config import EngineConfig
    from openft.inference.local import LocalEngine

    engine = LocalEngine(EngineConfig(device="cpu", dtype="float32"))
    try:
        tokenizer = engine.tokenizer(model)
        stops = tuple(stop_token_ids(tokenizer))
        params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
        return [
            asyncio.run(_collect(engine, GenerationRequest(model, _prompt_ids(tokenizer, p), params, stops)))
            for p in prompts
        ]
    finally:
        engine.close()


async def _collect(engine: Any, request: GenerationRequest) -> str:
    return "".join([delta.text async for delta in engine.generate(request)])


def load_exported(source: ExportSource, export_format: str, out_dir: Path) -> tuple[Any, Any, str]:
    """(model, tokenizer, how) loaded from the export alone (plus the base for `peft`), in float32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model: Any
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if export_format == "merged":
            model = AutoModelForCausalLM.from_pretrained(str(out_dir), dtype=torch.float32)
            how = "transformers AutoModelForCausalLM.from_pretrained(export)"
            tokenizer = AutoTokenizer.from_pretrained(str(out_dir))
        elif export_format == "peft":
            from peft import PeftModel

            base = AutoModelForCausalLM.from_pretrained(source.model.weights_path, dtype=torch.float32)
            model = PeftModel.from_pretrained(base, str(out_dir))
            how = "PEFT PeftModel.from_pretrained(base, export)"
            tokenizer = AutoTokenizer.from_pretrained(str(out_dir))
        else:
            gguf_file = next(p.name for p in out_dir.iterdir() if p.suffix == ".gguf")
            model = AutoModelForCausalLM.from_pretrained(
                str(out_dir), gguf_file=gguf_file, dtype=torch.float32
            )
            tokenizer = AutoTokenizer.from_pretrained(str(out_dir), gguf_file=gguf_file)
            how = (
                f"transformers from_pretrained(export, gguf_file={gguf_file!r}), tokenizer from the GGUF too"
            )
    return model.eval(), tokenizer, how


def greedy_answer(model: Any, tokenizer: Any, prompt: str, max_tokens: int) -> str:
    import torch

    ids = _prompt_ids(tokenizer, prompt)
    stops = stop_token_ids(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    with torch.no_grad():
        output = model.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=max_tokens,
            do_sample=False,
            eos_token_id=stops,
            pad_token_id=pad,
        )
    answer = [t for t in output[0][len(ids) :].tolist() if t not in stops]
    return str(tokenizer.decode(answer, skip_special_tokens=False))


def token_agreement(tokenizer: Any, served: str, exported: str) -> float:
    a = tokenizer.encode(served, add_special_tokens=False)
    b = tokenizer.encode(exported, add_special_tokens=False)
    if not a and not b:
        return 1.0
    same = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        same += 1
    return same / max(len(a), len(b))


def _prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    return render_prompt(tokenizer, [{"role": "user", "content": prompt}])


def _tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)
