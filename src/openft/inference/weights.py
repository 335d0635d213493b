"""Loaded models: each base (or full fine-tune) once, and LoRA adapters on top in an LRU cache.

Adapters of one base are applied by one `LoraSet` on that base, under names `a0`, `a1`, ..., so a
batch can mix them. The cache is used by the scheduler thread alone, which is why nothing here locks:
an adapter can only be evicted between batches, never from under one.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from openft.inference.bf16_products import use_bf16_products
from openft.inference.config import EngineConfig
from openft.inference.lora import LoraSet
from openft.inference.model_dirs import adapter_bytes
from openft.inference.types import EngineStats, ModelLoadError
from openft.train.precision import cpu_has_native_bf16

log = logging.getLogger("openft.inference")


@dataclass
class LoadedWeights:
    key: str
    model: Any  # the transformers model; its LoRA-targeted linear layers get wrapped by `lora`
    lora: LoraSet | None = None
    # adapter path -> its name in `lora`
    adapters: dict[str, str] = field(default_factory=dict)

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_output_embeddings().weight.shape[0])


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name != "auto":
        dtype = getattr(torch, name, None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"unknown dtype {name!r}: use auto, float32, bfloat16 or float16")
        return dtype
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    # float32 on CPUs (with bf16 products where the CPU has them: bf16_products_for): bf16 attention
    # kernels are kept per sequence length, and decoding meets a new one at every step.
    return torch.float32


def bf16_products_for(name: str, device: torch.device) -> bool:
    """Whether linear layers multiply in bf16 (openft.inference.bf16_products): for "auto" on a CPU
    with native bf16 instructions. An explicit dtype is taken as it is."""
    return name == "auto" and device.type == "cpu" and cpu_has_native_bf16()


class WeightCache:
    def __init__(self, config: EngineConfig, stats: EngineStats) -> None:
        self.config = config
        self.stats = stats
        self.device = resolve_device(config.device)
        self.dtype = resolve_dtype(config.dtype, self.device)
        self.bf16_products = bf16_products_for(config.dtype, self.device)
        self._weights: OrderedDict[str, LoadedWeights] = OrderedDict()
        # (weights key, adapter path) -> bytes, least recently used first
        self._adapter_lru: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._n_adapter_names = 0

    def weights(self, key: str) -> LoadedWeights:
        loaded = self._weights.get(key)
        if loaded is not None:
            self._weights.move_to_end(key)
            return loaded
        while len(self._weights) >= max(1, self.config.max_loaded_models):
            self._drop_weights(next(iter(self._weights)))
        loaded = LoadedWeights(key=key, model=self._load_model(key))
        self._weights[key] = loaded
        self.stats.n_weight_loads[key] = self.stats.n_weight_loads.get(key, 0) + 1
        return loaded

    def adapter(self, weights: LoadedWeights, path: str, pinned: set[tuple[str, str]]) -> str:
        """The adapter's name in `weights.lora`, loading it (and evicting others) if needed."""
        slot = (weights.key, path)
        if path in weights.adapters:
            self._adapter_lru.move_to_end(slot)
            return weights.adapters[path]
        size = adapter_bytes(path)
        self._evict_adapters(size, keep=pinned | {slot})
        name = f"a{self._n_adapter_names}"
        self._n_adapter_names += 1
        self._load_adapter(weights, path, name)
        weights.adapters[path] = name
        self._adapter_lru[slot] = size
        self.stats.n_adapter_loads += 1
        self.stats.adapter_bytes = sum(self._adapter_lru.values())
        return name

    def _load_model(self, path: str) -> Any:
        from transformers import AutoModelForCausalLM

        products = ", bf16 products" if self.bf16_products else ""
        log.info("loading %s on %s (%s%s)", path, self.device, self.dtype, products)
        try:
            with _quiet_loading():
                model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=self.dtype)
        except OSError as exc:  # transformers reports missing files as OSError
            raise ModelLoadError(f"cannot load the model at {path}: {exc}") from exc
        if self.bf16_products:
            use_bf16_products(model)
        return model.to(self.device).eval()

    def _load_adapter(self, weights: LoadedWeights, path: str, name: str) -> None:
        if weights.lora is None:
            weights.lora = LoraSet(weights.model)
        weights.lora.add(name, path, self.device, self.dtype)

    def _evict_adapters(self, incoming: int, keep: set[tuple[str, str]]) -> None:
        budget = self.config.adapter_cache_bytes
        for slot in list(self._adapter_lru):
            if sum(self._adapter_lru.values()) + incoming <= budget:
                return
            if slot in keep:
                continue
            self._drop_adapter(slot)

    def _drop_adapter(self, slot: tuple[str, str]) -> None:
        key, path = slot
        weights = self._weights[key]
        name = weights.adapters.pop(path)
        assert weights.lora is not None
        weights.lora.remove(name)
        del self._adapter_lru[slot]
        self.stats.n_adapter_evictions += 1
        self.stats.adapter_bytes = sum(self._adapter_lru.values())

    def _drop_weights(self, key: str) -> None:
        log.info("unloading %s", key)
        for slot in [s for s in self._adapter_lru if s[0] == key]:
            del self._adapter_lru[slot]
        self.stats.adapter_bytes = sum(self._adapter_lru.values())
        del self._weights[key]
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """No progress bars or deprecation chatter on the server's terminal for every model it loads."""
    from transformers.utils import logging as hf_logging

    showed_progress = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        if showed_progress:
            hf_logging.enable_progress_bar()
