"""Writes a built-in model (Llama architecture, byte tokenizer, ChatML template) as a GGUF file, the way
llama.cpp's converter lays a Llama out, so that the GGUF import can be tested on a file made here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# transformers' names -> GGUF names, per layer ("{i}") and for the whole model.
_LAYER_TENSORS = {
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
}
_TOKEN_NORMAL, _TOKEN_CONTROL = 1, 3


def write_gguf_from_model_dir(model_dir: Path, out_path: Path, *, architecture: str = "llama") -> Path:
    """`model_dir` (a tied-embedding Llama saved by transformers) as an F32 GGUF file at `out_path`."""
    import gguf
    from safetensors.numpy import load_file
    from transformers import AutoTokenizer

    config = json.loads((model_dir / "config.json").read_text())
    weights = load_file(str(model_dir / "model.safetensors"))
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    n_heads, n_kv_heads = config["num_attention_heads"], config["num_key_value_heads"]

    writer = gguf.GGUFWriter(str(out_path), architecture)
    writer.add_name("openft tiny test model")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(n_heads)
    writer.add_head_count_kv(n_kv_heads)
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_rope_freq_base(_rope_theta(config))
    writer.add_rope_dimension_count(config["hidden_size"] // n_heads)
    writer.add_vocab_size(config["vocab_size"])
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    special = set(tokenizer.all_special_tokens)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([_TOKEN_CONTROL if token in special else _TOKEN_NORMAL for token in tokens])
    # One token per byte: nothing to merge. transformers derives merges from the scores when the
    # file has none (an empty merge list is not kept), and derives none from single characters.
    writer.add_token_scores([0.0] * len(tokens))
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_add_bos_token(False)
    writer.add_chat_template(tokenizer.chat_template)

    writer.add_tensor("token_embd.weight", weights["model.embed_tokens.weight"])
    for layer in range(config["num_hidden_layers"]):
        for hf_name, gguf_name in _LAYER_TENSORS.items():
            tensor = weights[f"model.layers.{layer}.{hf_name}"]
            if gguf_name == "attn_q.weight":
                tensor = _permute(tensor, n_heads)
            elif gguf_name == "attn_k.weight":
                tensor = _permute(tensor, n_kv_heads)
            writer.add_tensor(f"blk.{layer}.{gguf_name}", tensor)
    writer.add_tensor("output_norm.weight", weights["model.norm.weight"])

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out_path


def _permute(weights: np.ndarray, n_heads: int) -> np.ndarray:
    """llama.cpp's rotary layout for the query and key projections (transformers undoes it on load)."""
    return (
        weights.reshape(n_heads, 2, weights.shape[0] // n_heads // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _rope_theta(config: dict[str, object]) -> float:
    parameters = config.get("rope_parameters")
    if isinstance(parameters, dict) and "rope_theta" in parameters:
        return float(parameters["rope_theta"])
    return float(config.get("rope_theta", 10000.0))  # type: ignore[arg-type]
