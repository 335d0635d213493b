"""The q/k row order of GGUF exports against transformers' GGUF loader, and file names, without a model."""

from __future__ import annotations

import numpy as np
import pytest
from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

from openft.export.gguf import gguf_file_name, gguf_name, interleave_heads


@pytest.mark.parametrize(("n_heads", "n_kv_heads"), [(4, 4), (4, 2), (9, 3)])
def test_transformers_loader_undoes_the_interleaving(n_heads: int, n_kv_heads: int) -> None:
    head_dim, hidden = 8, 24
    rng = np.random.default_rng(0)
    q = rng.standard_normal((n_heads * head_dim, hidden)).astype(np.float32)
    k = rng.standard_normal((n_kv_heads * head_dim, hidden)).astype(np.float32)
    processor = LlamaTensorProcessor(
        config={"num_attention_heads": n_heads, "num_key_value_heads": n_kv_heads}
    )
    q_out, k_out = interleave_heads(q, n_heads), interleave_heads(k, n_kv_heads)
    assert not np.array_equal(q_out, q)
    assert np.array_equal(processor.process(q_out, "blk.0.attn_q.weight").weights, q)
    assert np.array_equal(processor.process(k_out, "blk.0.attn_k.weight").weights, k)


def test_names() -> None:
    assert gguf_name("model.layers.3.self_attn.q_proj.weight") == "blk.3.attn_q.weight"
    assert gguf_name("model.layers.0.mlp.down_proj.weight") == "blk.0.ffn_down.weight"
    assert gguf_name("model.embed_tokens.weight") == "token_embd.weight"
    assert gguf_file_name("ft:openft-tiny:personal::abc:ckpt-step-4", "q8_0") == (
        "ft-openft-tiny-personal-abc-ckpt-step-4.q8_0.gguf"
    )
