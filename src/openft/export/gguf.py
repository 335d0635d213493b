"""`gguf`: a Llama-architecture model as one GGUF file for llama.cpp and Ollama, with a Modelfile.

Tensor names, metadata keys and the q/k row order are llama.cpp's: llama.cpp's rotary embedding pairs
neighbouring dimensions of each head, transformers' pairs the two halves, so the q and k projections'
rows are permuted per head on the way out (`interleave_heads`; transformers' GGUF loader undoes it).
The tokenizer goes in as llama.cpp's `gpt2` (byte-level BPE) vocabulary: tokens by id, their types,
the merges, the special token ids and the chat template.

Outtypes: f32, f16, bf16 and q8_0 (blocks of 32 weights: one f16 scale and 32 int8, gguf's quantizer).
One-dimensional tensors (the norms) stay f32 in every type, as llama.cpp's own converter keeps them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from openft.errors import InvalidRequest
from openft.export.merged import load_merged, load_tokenizer
from openft.export.modelfile import write_modelfile
from openft.export.source import ExportSource, base_dir
from openft.models.gguf_header import read_gguf_header
from openft.models.gguf_import import read_manifest

# Per outtype: the tensor type of the matrices and the file type llama.cpp reports.
OUTTYPES = {
    "f32": ("F32", "ALL_F32"),
    "f16": ("F16", "MOSTLY_F16"),
    "bf16": ("BF16", "MOSTLY_BF16"),
    "q8_0": ("Q8_0", "MOSTLY_Q8_0"),
}
# transformers' Llama parameter names -> llama.cpp's, per layer and for the rest.
LAYER_TENSORS = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
OTHER_TENSORS = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
_LAYER_NAME = re.compile(r"model\.layers\.(\d+)\.(.+)\.weight")
# llama.cpp's token types
NORMAL, UNUSED, CONTROL, USER_DEFINED = 1, 5, 3, 4
# The pre-tokenizer llama.cpp is told when the base did not come from a GGUF file that names one.
DEFAULT_PRE_TOKENIZER = "gpt-2"
# What llama.cpp says when a `gpt2` vocabulary has no merges (llama-vocab.cpp, checked at 0c1e57098).
NO_MERGES_NOTE = (
    "llama.cpp and Ollama will not load this GGUF file: its byte vocabulary has no BPE merges, and "
    'llama.cpp requires them for a byte-level BPE tokenizer ("cannot find tokenizer merges in model '
    'file"). transformers loads it (from_pretrained(dir, gguf_file=...)); for llama.cpp, export a model '
    "whose tokenizer has merges, such as one fine-tuned from smollm2-135m-instruct."
)


def export_gguf(source: ExportSource, out_dir: Path, gguf_type: str) -> list[Path]:
    import gguf

    model = load_merged(source)
    check_llama(model.config, source.name)
    tokenizer = load_tokenizer(source)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / gguf_file_name(source.name, gguf_type)
    writer = gguf.GGUFWriter(str(path), "llama")
    try:
        writer.add_name(source.name)
        writer.add_file_type(int(getattr(gguf.LlamaFileType, OUTTYPES[gguf_type][1])))
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        write_hyperparameters(writer, model.config)
        write_tokenizer(writer, tokenizer, model.config.vocab_size, pre_tokenizer(source))
        for name, data, raw_type in gguf_tensors(model, gguf_type):
            writer.add_tensor(name, data, raw_dtype=raw_type)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    note = llama_cpp_note(tokenizer)
    write_modelfile(out_dir, path.name, tokenizer, model.config.max_position_embeddings, note=note)
    return sorted(p for p in out_dir.iterdir() if p.is_file())


def llama_cpp_note(tokenizer: Any) -> str | None:
    """Why llama.cpp will not load the model's GGUF file, if it will not: a vocabulary without merges
    (the built-in models' byte tokenizer). GGUF cannot hold an empty merge list, and a placeholder
    merge breaks transformers' loader, which wants every merge and its result in the vocabulary."""
    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    return None if backend["model"].get("merges") else NO_MERGES_NOTE


def gguf_notes(source: ExportSource) -> tuple[str, ...]:
    """What a user of the GGUF export should know before taking it to llama.cpp or Ollama."""
    note = llama_cpp_note(load_tokenizer(source))
    return (note,) if note else ()


def gguf_file_name(model_name: str, gguf_type: str) -> str:
    """A file name from the model's name: colons and other separators become dashes."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", model_name).strip("-.") or "model"
    return f"{stem}.{gguf_type}.gguf"


def pre_tokenizer(source: ExportSource) -> str:
    """llama.cpp's name for how text is split before BPE: the one in the GGUF file the base was
    converted from (SmolLM2's says `smollm`), else GPT-2's."""
    base = base_dir(source)
    origin = read_manifest(base).get("source") if base is not None else None
    if origin and Path(origin).is_file():
        named = read_gguf_header(Path(origin)).metadata.get("tokenizer.ggml.pre")
        if isinstance(named, str) and named:
            return named
    return DEFAULT_PRE_TOKENIZER


def check_llama(config: Any, name: str) -> None:
    """Only plain Llama networks: another architecture, biases or RoPE scaling would be written wrong."""
    rope = dict(getattr(config, "rope_parameters", None) or {})
    problems = []
    if config.model_type != "llama":
        problems.append(f"its architecture is {config.model_type!r}")
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        problems.append("it has bias terms")
    if rope.get("rope_type", "default") != "default":
        problems.append(f"it uses {rope['rope_type']!r} RoPE scaling")
    if problems:
        raise InvalidRequest(
            f"The model `{name}` cannot be exported as GGUF: {' and '.join(problems)}; GGUF export writes "
            "plain Llama-architecture models. Use format `merged` instead.",
            param="format",
        )


def write_hyperparameters(writer: Any, config: Any) -> None:
    rope = dict(getattr(config, "rope_parameters", None) or {})
    theta = rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_rope_freq_base(float(theta))
    writer.add_rope_dimension_count(head_dim)
    if head_dim * config.num_attention_heads != config.hidden_size:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_vocab_size(config.vocab_size)


def write_tokenizer(writer: Any, tokenizer: Any, vocab_size: int, pre: str) -> None:
    from openft.data.render import end_of_turn_id

    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    if backend["model"]["type"] != "BPE":
        raise InvalidRequest(
            f"GGUF export writes byte-level BPE tokenizers; this model's is {backend['model']['type']}. "
            "Use format `merged` instead.",
            param="format",
        )
    tokens, types = vocabulary(tokenizer, vocab_size)
    merges = [m if isinstance(m, str) else " ".join(m) for m in backend["model"].get("merges") or []]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    if merges:
        writer.add_token_merges(merges)
    else:
        # A byte vocabulary has no merges, and GGUF cannot store an empty list: readers that derive
        # merges from scores (transformers) then find none.
        writer.add_token_scores([0.0] * len(tokens))
    if tokenizer.bos_token_id is not None:
        writer.add_bos_token_id(tokenizer.bos_token_id)
    if tokenizer.eos_token_id is not None:
        writer.add_eos_token_id(tokenizer.eos_token_id)
    if tokenizer.pad_token_id is not None:
        writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_eot_token_id(end_of_turn_id(tokenizer))
    adds_bos = tokenizer.bos_token_id is not None and tokenizer("a")["input_ids"][:1] == [
        tokenizer.bos_token_id
    ]
    writer.add_add_bos_token(adds_bos)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)


def vocabulary(tokenizer: Any, vocab_size: int) -> tuple[list[str], list[int]]:
    """Tokens by id as the tokenizer spells them (byte-level alphabet), with llama.cpp's token types;
    rows of the embedding beyond the tokenizer's vocabulary become unused placeholders."""
    by_id = {token_id: token for token, token_id in tokenizer.get_vocab().items()}
    added = tokenizer.added_tokens_decoder
    size = max(vocab_size, max(by_id) + 1)
    tokens, types = [], []
    for token_id in range(size):
        if token_id not in by_id:
            tokens.append(f"[PAD{token_id}]")
            types.append(UNUSED)
        elif token_id in added:
            tokens.append(by_id[token_id])
            types.append(CONTROL if added[token_id].special else USER_DEFINED)
        else:
            tokens.append(by_id[token_id])
            types.append(NORMAL)
    return tokens, types


def gguf_tensors(model: Any, gguf_type: str) -> list[tuple[str, np.ndarray, Any]]:
    """(llama.cpp name, data, GGML type or None for plain float arrays) for every weight of the model."""
    config = model.config
    tied = bool(getattr(config, "tie_word_embeddings", False))
    out = []
    for hf_name, tensor in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue  # llama.cpp reuses token_embd when there is no output tensor
        name = gguf_name(hf_name)
        data = tensor.detach().float().cpu().numpy()
        if hf_name.endswith("q_proj.weight"):
            data = interleave_heads(data, config.num_attention_heads)
        elif hf_name.endswith("k_proj.weight"):
            data = interleave_heads(data, config.num_key_value_heads)
        out.append((name, *encode(data, gguf_type)))
    return out


def gguf_name(hf_name: str) -> str:
    layer = _LAYER_NAME.fullmatch(hf_name)
    if layer is not None and layer.group(2) in LAYER_TENSORS:
        return f"blk.{layer.group(1)}.{LAYER_TENSORS[layer.group(2)]}.weight"
    stem = hf_name.removesuffix(".weight")
    if stem in OTHER_TENSORS and hf_name.endswith(".weight"):
        return f"{OTHER_TENSORS[stem]}.weight"
    raise InvalidRequest(
        f"GGUF export does not know where the weight {hf_name} goes in a Llama GGUF file. "
        "Use format `merged` instead.",
        param="format",
    )


def interleave_heads(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """Rows of each head from transformers' order (first half, second half) to llama.cpp's (pairs)."""
    rows = weight.shape[0]
    half = rows // n_heads // 2
    return weight.reshape(n_heads, 2, half, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def encode(data: np.ndarray, gguf_type: str) -> tuple[np.ndarray, Any]:
    """The tensor's bytes in the outtype (1-D tensors stay f32; rows that are not whole q8_0 blocks fall
    back to f16)."""
    from gguf import GGMLQuantizationType, quants

    kind = OUTTYPES[gguf_type][0]
    if data.ndim == 1 or kind == "F32":
        return data.astype(np.float32), None
    if kind == "Q8_0" and data.shape[-1] % 32 != 0:
        kind = "F16"
    if kind == "F16":
        return data.astype(np.float16), None
    qtype = getattr(GGMLQuantizationType, kind)
    return quants.quantize(data.astype(np.float32), qtype), qtype
