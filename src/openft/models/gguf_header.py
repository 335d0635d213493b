"""Reads a GGUF file's header (metadata and tensor table) in plain Python, without the weights.

The `gguf` package's reader parses every metadata array into numpy objects (seconds for a 49k-token
vocabulary); listing models needs only a few numbers, so this walks the header once and skips the
token and merge lists. It also says whether the file is whole: the tensor table says where each tensor
ends, and a truncated download ends before the last one does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from openft.models.errors import InvalidModelError

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
# Metadata value types of the GGUF format (version 2 and 3), as struct formats; 8 is a string, 9 an array.
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
# Arrays longer than this (vocabularies, merges) are skipped, not kept.
_MAX_KEPT_ARRAY = 64
# Beyond these a header is corrupt (a chat template is kilobytes; ggml tensors have at most 4 dimensions).
_MAX_STRING_BYTES = 64 << 20
_MAX_DIMS = 8


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int  # from the start of the data section

    @property
    def n_elements(self) -> int:
        n = 1
        for dim in self.shape:
            n *= dim
        return n


@dataclass(frozen=True)
class GGUFHeader:
    path: Path
    version: int
    metadata: dict[str, Any]
    tensors: tuple[TensorInfo, ...]
    data_offset: int  # where the tensor data starts in the file

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    @property
    def model_name(self) -> str | None:
        name = self.metadata.get("general.name")
        return str(name) if name else None

    @property
    def context_length(self) -> int | None:
        value = self.metadata.get(f"{self.architecture}.context_length")
        return value if isinstance(value, int) and value > 0 else None

    @property
    def n_parameters(self) -> int:
        return sum(tensor.n_elements for tensor in self.tensors)

    @property
    def has_chat_template(self) -> bool:
        return bool(self.metadata.get("tokenizer.chat_template"))


def is_gguf_file(path: Path) -> bool:
    """Whether `path` is a file that starts with the GGUF magic bytes."""
    try:
        with path.open("rb") as file:
            return file.read(4) == MAGIC
    except OSError:
        return False


def read_gguf_header(path: Path) -> GGUFHeader:
    """The header of GGUF file `path`, or InvalidModelError saying why it is not a readable GGUF file."""
    try:
        with path.open("rb") as file:
            return _read(file, path)
    except _Truncated:
        reason = "it ends inside its header (a truncated download?)"
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        reason = str(exc)
    raise InvalidModelError(f"{path.name} is not a readable GGUF file: {reason}", param="path")


def check_complete(header: GGUFHeader, block_sizes: dict[int, tuple[int, int]]) -> None:
    """InvalidModelError where the file is shorter than its tensor table says (a truncated file).

    `block_sizes` maps a ggml tensor type to (elements per block, bytes per block), as the `gguf`
    package's GGML_QUANT_SIZES does.
    """
    end = header.data_offset
    for tensor in header.tensors:
        if tensor.ggml_type not in block_sizes:
            raise InvalidModelError(
                f"{header.path.name}: tensor {tensor.name} has a ggml type ({tensor.ggml_type}) that this "
                "version of the gguf package does not know",
                param="path",
            )
        block_elements, block_bytes = block_sizes[tensor.ggml_type]
        end = max(end, header.data_offset + tensor.offset + tensor.n_elements // block_elements * block_bytes)
    size = header.path.stat().st_size
    if size < end:
        raise InvalidModelError(
            f"{header.path.name} is truncated: its tensors need {end:,} bytes but the file has {size:,}; "
            "download it again",
            param="path",
        )


class _Truncated(Exception):
    pass


def _read(file: BinaryIO, path: Path) -> GGUFHeader:
    if file.read(4) != MAGIC:
        raise InvalidModelError(
            f"{path.name} is not a GGUF file (it does not start with the bytes 'GGUF'); "
            "expected a .gguf model file as llama.cpp, Ollama or LM Studio write them",
            param="path",
        )
    (version,) = _unpack(file, "<I")
    if version not in (2, 3):
        raise InvalidModelError(
            f"{path.name} is GGUF version {version}; versions 2 and 3 are supported", param="path"
        )
    n_tensors, n_fields = _unpack(file, "<QQ")
    metadata: dict[str, Any] = {}
    for _ in range(n_fields):
        key = _string(file)
        (value_type,) = _unpack(file, "<I")
        metadata[key] = _value(file, value_type)
    tensors = []
    for _ in range(n_tensors):
        name = _string(file)
        (n_dims,) = _unpack(file, "<I")
        if n_dims > _MAX_DIMS:
            raise ValueError(f"corrupt header: tensor {name} has {n_dims} dimensions")
        shape = _unpack(file, "<" + "Q" * n_dims)
        ggml_type, offset = _unpack(file, "<IQ")
        tensors.append(TensorInfo(name, tuple(shape), ggml_type, offset))
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0:
        alignment = DEFAULT_ALIGNMENT
    position = file.tell()
    data_offset = -(-position // alignment) * alignment
    return GGUFHeader(path, version, metadata, tuple(tensors), data_offset)


def _unpack(file: BinaryIO, fmt: str) -> tuple[Any, ...]:
    size = struct.calcsize(fmt)
    data = file.read(size)
    if len(data) < size:
        raise _Truncated
    return struct.unpack(fmt, data)


def _string(file: BinaryIO) -> str:
    (length,) = _unpack(file, "<Q")
    if length > _MAX_STRING_BYTES:
        raise ValueError(f"corrupt header: a string of {length:,} bytes")
    data = file.read(length)
    if len(data) < length:
        raise _Truncated
    return data.decode("utf-8")


# Real files nest arrays one level deep at most; a crafted file could nest them until the stack ends.
_MAX_ARRAY_DEPTH = 8


def _value(file: BinaryIO, value_type: int, depth: int = 0) -> Any:
    if value_type in _SCALARS:
        return _unpack(file, _SCALARS[value_type])[0]
    if value_type == _STRING:
        return _string(file)
    if value_type == _ARRAY:
        if depth >= _MAX_ARRAY_DEPTH:
            raise ValueError(f"metadata arrays nested more than {_MAX_ARRAY_DEPTH} deep")
        item_type, count = _unpack(file, "<IQ")
        if count > _MAX_KEPT_ARRAY:
            _skip_array(file, item_type, count, depth + 1)
            return None
        return [_value(file, item_type, depth + 1) for _ in range(count)]
    raise ValueError(f"unknown metadata value type {value_type}")


def _skip_array(file: BinaryIO, item_type: int, count: int, depth: int) -> None:
    if item_type in _SCALARS:
        file.seek(struct.calcsize(_SCALARS[item_type]) * count, 1)
        return
    for _ in range(count):
        _value(file, item_type, depth)
