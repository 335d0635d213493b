"""GGUF exports of a smollm2-135m-instruct LoRA fine-tune run in llama.cpp: do they load, and are
llama.cpp's greedy answers the served model's?

    OPENFT_LLAMA_CPP_BIN=/path/to/llama-simple python bench/export_llama_cpp.py --adapter DIR \
        [--types f32 f16 q8_0] [--max-tokens 32] [--prompt P ...] [--work DIR]

`--adapter` is a LoRA checkpoint of smollm2-135m-instruct (`openft train ... --output RUN` writes
RUN/final), else bench/export_formats.py's random adapter. Each type is exported with `openft export`'s
code, then llama.cpp's `llama-simple` answers each check prompt, written out by the chat template, so
both sides read the same tokens. The served answers come from openft's engine (CPU, float32, LoRA on
the base). Prints a Markdown table; llama.cpp's own error is printed when a file does not load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from bench.export_formats import BASE_NAME, converted_base, make_adapter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=Path("/tmp/openft-bench-models"))
    parser.add_argument("--adapter", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=Path("/tmp/openft-bench-llama-cpp"))
    parser.add_argument("--types", nargs="+", default=["f32", "f16", "q8_0"])
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--prompt", action="append", help="a prompt (repeatable; default: the check's)")
    args = parser.parse_args()

    from openft.export.check import DEFAULT_PROMPTS, served_answers, token_agreement
    from openft.export.llama_cpp import LLAMA_CPP_BIN_ENV, LlamaCppError, llama_cpp_answer, render_prompt_text
    from openft.export.run import export_model
    from openft.export.source import checked_request, source_of
    from openft.inference.types import ModelRef

    binary = os.environ.get(LLAMA_CPP_BIN_ENV)
    if not binary or not Path(binary).is_file():
        sys.exit(f"set {LLAMA_CPP_BIN_ENV} to llama.cpp's llama-simple program")
    base = converted_base(args.models_dir)
    adapter = args.adapter or make_adapter(base, args.work / "adapter")
    model = ModelRef(f"ft:{BASE_NAME}:bench::llama-cpp", str(base), str(adapter), str(base), 8192)
    source = source_of(model, BASE_NAME)
    tokenizer = _tokenizer(str(base))
    prompts = tuple(args.prompt or DEFAULT_PROMPTS)
    served = served_answers(model, prompts, args.max_tokens)
    rows = []
    for gguf_type in args.types:
        out = args.work / f"gguf-{gguf_type}"
        shutil.rmtree(out, ignore_errors=True)
        result = export_model(source, checked_request("gguf", gguf_type), out, base_description="bench")
        gguf_file = next(p for p in result.files if p.suffix == ".gguf")
        started = time.perf_counter()
        try:
            answers = [
                llama_cpp_answer(Path(binary), gguf_file, render_prompt_text(tokenizer, p), args.max_tokens)
                for p in prompts
            ]
        except LlamaCppError as exc:
            print(f"{gguf_type}: {exc}", file=sys.stderr)
            rows.append((gguf_type, "no", "-", "-", "-"))
            continue
        seconds = time.perf_counter() - started
        agreements = [token_agreement(tokenizer, a, b) for a, b in zip(served, answers, strict=True)]
        n_same = sum(a == b for a, b in zip(served, answers, strict=True))
        for prompt, a, b in zip(prompts, served, answers, strict=True):
            print(f"[{gguf_type}] {prompt}\n  served:    {a!r}\n  llama.cpp: {b!r}", file=sys.stderr)
        share = sum(agreements) / len(agreements)
        rows.append((gguf_type, "yes", f"{n_same}/{len(prompts)}", f"{share:.1%}", f"{seconds:.1f}"))
    print(f"\n{len(prompts)} prompts, {args.max_tokens} tokens, greedy\n")
    print("| gguf type | loads in llama.cpp | answers identical | answer tokens agree | llama.cpp s |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def _tokenizer(path: str) -> object:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


if __name__ == "__main__":
    main()
