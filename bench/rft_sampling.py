"""Reinforcement sampling: the recipe's group sampling through openft's engine batch against plain
transformers `generate` on the same policy (a LoRA model), the same prompts and the same settings.

    .venv/bin/python -m bench.rft_sampling [--model smollm2-135m-instruct] [--models-dir DIR]
        [--prompts 8] [--group 4] [--max-new-tokens 64] [--threads N]

Both sides sample `group` answers to each of `prompts` chat prompts (temperature 0.7, the recipe's) in
one batch of prompts × group rows; `generate` left-pads them and decodes every row until the longest
answer ends, the engine's batch drops each row when it ends. Printed per side: seconds, answer tokens,
answer tokens per second; then the ratio openft / generate. The model's LoRA adapter is freshly
initialised (B = 0 as PEFT makes it, so the answers are the base model's), as at a job's first step.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from bench.learning_tasks import MARV_FACTS
from openft.data.render import render_prompt, stop_token_ids
from openft.inference.in_process import generate_token_ids
from openft.inference.types import GenerationRequest, ModelRef, SamplingParams
from openft.train.spec import find_base_model

TEMPERATURE = 0.7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--models-dir", type=Path, default=Path.home() / ".openft" / "models")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--group", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = find_base_model(args.models_dir, args.model)
    path = str(base.path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"))
    model.eval()
    stops = stop_token_ids(tokenizer)
    questions = list(MARV_FACTS)[: args.prompts]
    prompts = [render_prompt(tokenizer, [{"role": "user", "content": q}], None) for q in questions]

    results = {"generate": _with_generate(model, tokenizer, prompts, stops, args)}
    results["openft"] = _with_engine(model, tokenizer, prompts, stops, args)
    for side, row in results.items():
        print(
            f"{side:9s} {row['seconds']:7.2f} s  {row['answer_tokens']:5d} answer tokens  "
            f"{row['tokens_per_s']:7.1f} tokens/s"
        )
    ratio = results["openft"]["tokens_per_s"] / results["generate"]["tokens_per_s"]
    print(f"openft / generate: {ratio:.2f}x answer tokens per second")
    print(json.dumps({"settings": vars(args) | {"models_dir": str(args.models_dir)}, **results}))


def _with_generate(model, tokenizer, prompts, stops, args) -> dict[str, float]:  # type: ignore[no-untyped-def]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    rows = [p for p in prompts for _ in range(args.group)]
    width = max(len(p) for p in rows)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in rows])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in rows])
    torch.manual_seed(0)
    started = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=args.max_new_tokens,
            eos_token_id=stops,
            pad_token_id=pad,
            do_sample=True,
            temperature=TEMPERATURE,
            top_k=0,
            top_p=1.0,
        )
    seconds = time.perf_counter() - started
    tokens = 0
    for row in out[:, width:].tolist():
        ends = [i for i, t in enumerate(row) if t in stops]
        tokens += ends[0] + 1 if ends else len(row)
    return {"seconds": seconds, "answer_tokens": tokens, "tokens_per_s": tokens / seconds}


def _with_engine(model, tokenizer, prompts, stops, args) -> dict[str, float]:  # type: ignore[no-untyped-def]
    ref = ModelRef("policy", "", None, "", 8192)
    requests = [
        GenerationRequest(
            ref,
            prompt,
            SamplingParams(max_tokens=args.max_new_tokens, temperature=TEMPERATURE, n=args.group, seed=i),
            tuple(stops),
        )
        for i, prompt in enumerate(prompts)
    ]
    started = time.perf_counter()
    answers = generate_token_ids(model, tokenizer, requests, torch.device("cpu"))
    seconds = time.perf_counter() - started
    tokens = sum(len(choice) for choices in answers for choice in choices)
    return {"seconds": seconds, "answer_tokens": tokens, "tokens_per_s": tokens / seconds}


if __name__ == "__main__":
    main()
