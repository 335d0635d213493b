"""GGUF files (llama.cpp, Ollama, LM Studio) as trainable base models: converted once, then cached.

transformers reads a GGUF file with `from_pretrained(dir, gguf_file=name)`, dequantizing every tensor
(about 30 s for a 135M model on a busy CPU). A model loaded that way counts as quantized, so it can be
neither saved nor trained. The conversion therefore builds a plain model from the config, moves the
dequantized weights into it and saves a normal checkpoint (fp32 safetensors, config, tokenizer, chat
template). Later loads read that checkpoint in seconds.

The cache is keyed by the file's identity: its size and a hash of its first and last MiB (the header,
which names every tensor and its quantization, and the end of the weights). Moving or copying the file
keeps the key; changing it changes the key.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openft.models.errors import InvalidModelError
from openft.models.gguf_header import GGUFHeader, check_complete, is_gguf_file, read_gguf_header

CONVERTED_DIR = "converted"
MANIFEST_NAME = "openft_gguf.json"
# Bumped when the conversion changes what it writes, so older cached checkpoints are rebuilt.
CONVERSION_VERSION = 1
# llama.cpp's architecture names that transformers knows under another spelling.
_GGUF_ALIASES = {
    "qwen2moe": "qwen2_moe",
    "qwen3moe": "qwen3_moe",
    "gpt-oss": "gpt_oss",
    "minimax-m2": "minimax_m2",
    "t5encoder": "t5",
}
# Metadata sections that transformers lists beside the architectures.
_NOT_ARCHITECTURES = {"general", "tokenizer"}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class GGUFModel:
    """What the catalog shows about a GGUF file before (or without) converting it."""

    path: Path
    architecture: str
    context_length: int | None
    n_parameters: int
    has_chat_template: bool


def inspect_gguf(path: Path) -> GGUFModel:
    """Check that `path` is a whole GGUF file of an architecture transformers can load (no weights are
    read); InvalidModelError with a one-line reason otherwise."""
    header = read_gguf_header(path)
    n_parts = header.metadata.get("split.count")
    if isinstance(n_parts, int) and n_parts > 1:
        raise InvalidModelError(
            f"{path.name} is one part of a model split into {n_parts} GGUF files; merge them into one file "
            "first (llama.cpp: llama-gguf-split --merge FIRST_PART OUT.gguf)",
            param="path",
        )
    _check_supported(header)
    from gguf.constants import GGML_QUANT_SIZES

    check_complete(header, {int(kind): sizes for kind, sizes in GGML_QUANT_SIZES.items()})
    return GGUFModel(
        path=path,
        architecture=header.architecture,
        context_length=header.context_length,
        n_parameters=header.n_parameters,
        has_chat_template=header.has_chat_template,
    )


def looks_like_gguf(path: Path) -> bool:
    """A path the user meant as a GGUF file: named *.gguf, or a file with the GGUF magic bytes."""
    if path.is_dir():
        return False
    return path.suffix.lower() == ".gguf" or (path.is_file() and is_gguf_file(path))


def cache_key(path: Path) -> str:
    """The file's content hash: two versions of a model that differ anywhere never share a checkpoint.
    Hashed once per process and file version (about 0.2 s for 100 MB), as catalog listings ask often."""
    stat = path.stat()
    return _content_key(str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)


@functools.lru_cache(maxsize=64)
def _content_key(path: str, size: int, mtime_ns: int, inode: int) -> str:
    digest = hashlib.sha256(f"v{CONVERSION_VERSION}:{size}:".encode())
    with open(path, "rb") as file:
        digest = hashlib.file_digest(file, lambda: digest)
    return digest.hexdigest()[:24]


def converted_dir(path: Path, models_dir: Path) -> Path:
    """Where the converted checkpoint of GGUF file `path` is (or will be) kept."""
    return models_dir / CONVERTED_DIR / f"{_safe_stem(path)}-{cache_key(path)}"


def is_converted(model_dir: Path) -> bool:
    # The manifest is written last and the directory appears by rename, so its presence means complete.
    return (model_dir / MANIFEST_NAME).is_file()


def ensure_converted(path: Path, models_dir: Path, progress: Progress | None = None) -> Path:
    """The converted checkpoint of GGUF file `path`, converted now if it is not cached yet.

    Conversions of one file are serialised by a lock file, so a server and a job started together
    convert once; the result is written to a temporary directory and renamed into place.
    """
    say = progress or (lambda _message: None)
    if not path.is_file():
        raise InvalidModelError(f"{path.name} is not a readable GGUF file: no such file", param="path")
    final_dir = converted_dir(path, models_dir)
    if is_converted(final_dir):
        return final_dir
    model = inspect_gguf(path)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    with _locked(final_dir.with_name(final_dir.name + ".lock")):
        if is_converted(final_dir):  # another process finished it while this one waited
            return final_dir
        work_dir = Path(tempfile.mkdtemp(prefix=f".{final_dir.name}.", dir=final_dir.parent))
        try:
            try:
                convert_gguf(model, work_dir, say)
            except (ValueError, KeyError, RuntimeError, OSError) as exc:
                # transformers refusing what the header promised (an odd tokenizer, a missing tensor)
                detail = f"no {exc}" if isinstance(exc, KeyError) else " ".join(str(exc).split())
                reason = detail or type(exc).__name__
                message = f"{path.name} could not be converted: {reason}"
                raise InvalidModelError(message, param="path") from exc
            shutil.rmtree(final_dir, ignore_errors=True)  # an incomplete leftover of a killed conversion
            work_dir.rename(final_dir)
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
    return final_dir


def convert_gguf(model: GGUFModel, out_dir: Path, say: Progress) -> None:
    """Write `model` as a transformers checkpoint into `out_dir`: fp32 safetensors, config, generation
    config, tokenizer with its chat template, and the manifest last."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    source_dir, file_name = str(model.path.parent), model.path.name
    showed_progress = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        say("reading the tokenizer and chat template")
        tokenizer = AutoTokenizer.from_pretrained(source_dir, gguf_file=file_name)
        say(f"dequantizing {model.n_parameters / 1e6:.1f}M parameters to fp32")
        loaded: Any = AutoModelForCausalLM.from_pretrained(
            source_dir, gguf_file=file_name, dtype=torch.float32
        )
        say("saving the checkpoint (safetensors)")
        plain = _unquantized_copy(loaded)
        del loaded
        plain.save_pretrained(out_dir)
    finally:
        if showed_progress:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
    context_length = plain.config.max_position_embeddings
    if isinstance(context_length, int) and context_length > 0:
        tokenizer.model_max_length = context_length  # GGUF tokenizers say "unlimited"
    tokenizer.save_pretrained(out_dir)
    manifest = {
        "source": str(model.path),
        "architecture": model.architecture,
        "n_parameters": model.n_parameters,
        "conversion_version": CONVERSION_VERSION,
    }
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")


def read_manifest(model_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((model_dir / MANIFEST_NAME).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _unquantized_copy(loaded: Any) -> Any:
    """The same network as a plain (not quantized) model: built from the config without the GGUF
    quantization marker, on the meta device, then given the loaded tensors (no second copy)."""
    import torch
    from transformers import AutoModelForCausalLM

    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):
        plain: Any = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), strict=True, assign=True)
    plain.tie_weights()
    plain.generation_config = loaded.generation_config
    return plain


def _check_supported(header: GGUFHeader) -> None:
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    architecture = header.architecture
    if not architecture:
        raise InvalidModelError(
            f"{header.path.name} does not say its architecture (general.architecture)", param="path"
        )
    supported = set(GGUF_SUPPORTED_ARCHITECTURES) - _NOT_ARCHITECTURES
    if _GGUF_ALIASES.get(architecture, architecture) not in supported:
        raise InvalidModelError(
            f"{header.path.name} holds a '{architecture}' model, an architecture transformers cannot "
            f"load from GGUF; supported: {', '.join(sorted(supported))}",
            param="path",
        )


def _safe_stem(path: Path) -> str:
    stem = "".join(char if char.isalnum() or char in "._-" else "-" for char in path.stem)
    return stem[:64] or "model"


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as lock_file:
        if sys.platform != "win32":
            import fcntl

            fcntl.flock(lock_file, fcntl.LOCK_EX)
        yield
