"""Serving fine-tuned models: engines that generate from base models, full fine-tunes and LoRA adapters.

`LocalEngine` (transformers in this process) and `VLLMEngine` (a vLLM server) implement the `Engine`
interface of `openft.inference.types`. Importing this package loads no torch: that happens in the
engine's own thread when the first request arrives. See docs/inference.md.
"""
