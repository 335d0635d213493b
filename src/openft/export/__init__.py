"""Model export: a fine-tuned model (or checkpoint) as files that run without openft.

Three formats: `peft` (the LoRA adapter, for PEFT on the base), `merged` (complete safetensors weights
with tokenizer, chat template and generation config, for plain transformers) and `gguf` (one GGUF file
for llama.cpp and Ollama, with a Modelfile). `openft.export.run.export_model` writes one; the check
(`openft.export.check`) compares the exported model's greedy answers with the served model's.

Importing this package loads no torch: the API resolves and validates an export before any model loads.
"""

from __future__ import annotations

FORMATS = ("peft", "merged", "gguf")
GGUF_TYPES = ("f32", "f16", "bf16", "q8_0")
DEFAULT_GGUF_TYPE = "f16"
# `--dtype` of merged exports: "auto" keeps the base model's own dtype.
MERGED_DTYPES = ("auto", "float32", "float16", "bfloat16")
