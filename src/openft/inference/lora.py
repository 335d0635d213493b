"""LoRA adapters applied at generation time, many per base model, without merging them into its weights.

Each targeted `nn.Linear` of the base is wrapped once in a `LoraLinear` that holds the (A, B) pair of
every loaded adapter touching it. A `Router` shared by the wrappers says, per batch, which adapter each
row uses: none (the base alone), one for the whole batch (one extra low-rank product per layer), or a
mix (the batch's adapters side by side as one wide low-rank pair: every row goes through all of them in
two dense products, and a per-row mask keeps only its own adapter's part). This is
the same arithmetic as PEFT's LoRA layer, `W x + B A x * alpha/r`, with the scale folded into B and a
fraction of PEFT's per-call overhead, which on small models is most of the cost of an adapter.

Only what openft's trainer writes is accepted (plain LoRA on linear layers, optionally rsLoRA); DoRA,
embedding LoRA, extra trained modules and per-layer rank patterns are refused with a clear error rather
than served wrongly.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from openft.inference.bf16_products import Bf16Linear, bf16_linear
from openft.inference.types import ModelLoadError

SAVED_PREFIX = "base_model.model."
A_SUFFIX, B_SUFFIX = ".lora_A.weight", ".lora_B.weight"
# Adapter settings that change the arithmetic; a value other than these is refused.
PLAIN_SETTINGS: dict[str, Any] = {
    "use_dora": False,
    "fan_in_fan_out": False,
    "bias": "none",
    "lora_bias": False,
    "modules_to_save": None,
    "rank_pattern": {},
    "alpha_pattern": {},
    "layer_replication": None,
    "trainable_token_indices": None,
    "target_parameters": None,
    "use_qalora": False,
}


@dataclass
class Router:
    """Which adapter each row of the current batch uses (set by the batch, read by every LoraLinear)."""

    single: str | None = None
    # A mixed batch: the adapters in it, and per row the index of its adapter in `mixed` (len(mixed):
    # the base alone).
    mixed: tuple[str, ...] = ()
    rows: torch.Tensor | None = None

    _masks: dict[tuple[int, torch.dtype], torch.Tensor] = field(default_factory=dict)

    def route(self, adapters: list[str | None], device: torch.device) -> None:
        names = set(adapters)
        self.clear()
        if names == {None}:
            return
        if len(names) == 1:
            self.single = adapters[0]
            return
        self.mixed = tuple(sorted(n for n in names if n is not None))
        slot = {name: i for i, name in enumerate(self.mixed)}
        self.rows = torch.tensor([len(self.mixed) if a is None else slot[a] for a in adapters], device=device)

    def row_mask(self, rank: int, dtype: torch.dtype) -> torch.Tensor:
        """[rows, 1, len(mixed) * rank]: 1 over each row's own adapter's `rank` columns, 0 elsewhere
        (everywhere for a row on the base alone). Made once per batch and rank, reused by every layer."""
        assert self.rows is not None
        key = (rank, dtype)
        if key not in self._masks:
            slots = F.one_hot(self.rows, len(self.mixed) + 1)[:, : len(self.mixed)]
            self._masks[key] = slots.to(dtype).repeat_interleave(rank, dim=1)[:, None, :]
        return self._masks[key]

    def clear(self) -> None:
        self.single, self.mixed, self.rows = None, (), None
        self._masks = {}


class LoraLinear(nn.Module):
    def __init__(self, base: nn.Linear, router: Router) -> None:
        super().__init__()
        self.base = base
        self.router = router
        # adapter name -> (A as [in, r], B * scale as [r, out])
        self.pairs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._wide_key: tuple[Any, ...] | None = None
        self._wide: tuple[torch.Tensor, torch.Tensor] = (torch.empty(0), torch.empty(0))
        self._unsound: list[int] = []  # slots (in the router's `mixed`) of adapters left out of _wide
        # A base multiplying in bf16 (openft.inference.bf16_products); the pairs stay in the model's dtype.
        self._bf16_base = isinstance(base, Bf16Linear)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The base layer's arithmetic without its module call, and the low-rank term added in place:
        # on a small model the per-call overhead, not the matmuls, is most of an adapter's cost.
        base = self.base
        if self._bf16_base:
            out = bf16_linear(x, base.weight, base.bias)
        else:
            out = F.linear(x, base.weight, base.bias)
        router = self.router
        if router.single is not None:
            pair = self.pairs.get(router.single)
            if pair is not None:
                out.view(-1, out.shape[-1]).addmm_(x.reshape(-1, x.shape[-1]) @ pair[0], pair[1])
            return out
        if router.rows is None:
            return out
        # Each row its own adapter: all of the batch's adapters as one wide pair, two dense products
        # for every row, then each row keeps its own adapter's columns. Measured on a CPU against
        # gathering a pair per row for batched products: 1.5-3x faster per layer (8-32 rows over
        # 4-16 adapters), the extra columns costing less than the per-row copies they replace.
        wide = self._widened(router.mixed)
        if wide is None:
            return out
        a_wide, b_wide, rank = wide
        rows = x.reshape(x.shape[0], -1, x.shape[-1])  # [rows, tokens, in], as the mask expects
        low_rank = (rows @ a_wide).mul_(router.row_mask(rank, a_wide.dtype))
        out.view(-1, out.shape[-1]).addmm_(low_rank.view(-1, low_rank.shape[-1]), b_wide)
        self._add_unsound(router, rows, out)
        return out

    def _add_unsound(self, router: Router, rows: torch.Tensor, out: torch.Tensor) -> None:
        """The rows of adapters with a NaN or infinite weight, each on its own: in the wide pair their
        columns would spread NaN to every row (0 * NaN), so they are left out of it. Such a row's
        logits turn non-finite and its request fails alone (openft.inference.sampling)."""
        assert router.rows is not None  # a mixed batch
        for slot in self._unsound:
            picked = torch.nonzero(router.rows.eq(slot)).flatten()
            if picked.numel():
                a, b = self.pairs[router.mixed[slot]]
                out.view(out.shape[0], -1, out.shape[-1]).index_add_(0, picked, rows[picked] @ a @ b)

    def _widened(self, names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor, int] | None:
        """(A's side by side as [in, n * r], B's one above the other as [n * r, out], r) for these
        adapters, each zero-padded to the largest rank r (all zeros for an adapter that skips this
        layer, or whose weights are not all finite: see _add_unsound). Kept while the batch's adapters
        stay the same, so decoding steps reuse it. None when none of them touches this layer (it is
        wrapped for another loaded adapter)."""
        pairs = [self.pairs.get(name) for name in names]
        if all(pair is None for pair in pairs):
            return None
        key = (names, tuple(id(pair) for pair in pairs))
        if self._wide_key != key:
            present = [pair for pair in pairs if pair is not None]
            rank = max(pair[0].shape[1] for pair in present)
            a_wide = present[0][0].new_zeros(self.base.in_features, len(names) * rank)
            b_wide = present[0][1].new_zeros(len(names) * rank, self.base.out_features)
            self._unsound = []
            for i, pair in enumerate(pairs):
                if pair is None:
                    continue
                if not (bool(pair[0].isfinite().all()) and bool(pair[1].isfinite().all())):
                    self._unsound.append(i)
                    continue
                a_wide[:, i * rank : i * rank + pair[0].shape[1]] = pair[0]
                b_wide[i * rank : i * rank + pair[1].shape[0]] = pair[1]
            self._wide_key, self._wide = key, (a_wide, b_wide)
        return self._wide[0], self._wide[1], self._wide[1].shape[0] // len(names)


class LoraSet:
    """The adapters loaded on one base model."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.router = Router()
        self._wrapped: dict[str, LoraLinear] = {}
        self.names: set[str] = set()

    def add(self, name: str, adapter_dir: str, device: torch.device, dtype: torch.dtype) -> int:
        """Load an adapter under `name`; returns the bytes its weights take."""
        pairs = read_adapter(Path(adapter_dir), device, dtype)
        for module_path in pairs:
            self._wrap(module_path, adapter_dir)
        for module_path, pair in pairs.items():
            self._wrapped[module_path].pairs[name] = pair
        self.names.add(name)
        return sum(a.numel() * a.element_size() + b.numel() * b.element_size() for a, b in pairs.values())

    def remove(self, name: str) -> None:
        for wrapper in self._wrapped.values():
            wrapper.pairs.pop(name, None)
        self.names.discard(name)

    def _wrap(self, module_path: str, adapter_dir: str) -> None:
        if module_path in self._wrapped:
            return
        parent_path, _, child = module_path.rpartition(".")
        try:
            parent = self.model.get_submodule(parent_path)
            module = getattr(parent, child)
        except AttributeError:
            raise ModelLoadError(
                f"the adapter at {adapter_dir} targets {module_path}, which the base lacks"
            ) from None
        if not isinstance(module, nn.Linear):
            raise ModelLoadError(
                f"the adapter at {adapter_dir} targets {module_path}, which is not a linear layer"
            )
        wrapper = LoraLinear(module, self.router)
        setattr(parent, child, wrapper)
        self._wrapped[module_path] = wrapper


def read_adapter(
    adapter_dir: Path, device: torch.device, dtype: torch.dtype
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """module path -> (A^T, B^T * scale), ready for `x @ A @ B`."""
    config = _read_config(adapter_dir)
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    scale = alpha / (math.sqrt(rank) if config.get("use_rslora") else rank)
    tensors = _read_weights(adapter_dir)
    pairs = {}
    for key, a in tensors.items():
        if key.endswith(B_SUFFIX):
            continue
        if not key.endswith(A_SUFFIX) or key[: -len(A_SUFFIX)] + B_SUFFIX not in tensors:
            raise ModelLoadError(f"the adapter at {adapter_dir} has weights openft cannot apply ({key})")
        b = tensors[key[: -len(A_SUFFIX)] + B_SUFFIX]
        module_path = key[: -len(A_SUFFIX)].removeprefix(SAVED_PREFIX)
        a_t = a.t().to(device=device, dtype=dtype).contiguous()
        b_t = (b.t().float() * scale).to(device=device, dtype=dtype).contiguous()
        pairs[module_path] = (a_t, b_t)
    if not pairs:
        raise ModelLoadError(f"the adapter at {adapter_dir} has no LoRA weights")
    return pairs


def _read_config(adapter_dir: Path) -> dict[str, Any]:
    try:
        config = json.loads((adapter_dir / "adapter_config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"cannot read the adapter config in {adapter_dir}: {exc}") from exc
    if config.get("peft_type", "LORA") != "LORA":
        raise ModelLoadError(f"the adapter at {adapter_dir} is {config.get('peft_type')}, not LoRA")
    for key, plain in PLAIN_SETTINGS.items():
        value = config.get(key)
        if value and value != plain:
            raise ModelLoadError(
                f"the adapter at {adapter_dir} uses {key}={value!r}, which openft does not serve"
            )
    return config


def _read_weights(adapter_dir: Path) -> dict[str, torch.Tensor]:
    safetensors_path = adapter_dir / "adapter_model.safetensors"
    try:
        if safetensors_path.is_file():
            from safetensors.torch import load_file

            return load_file(str(safetensors_path))
        return torch.load(adapter_dir / "adapter_model.bin", map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot read the adapter weights in {adapter_dir}: {exc}") from exc
