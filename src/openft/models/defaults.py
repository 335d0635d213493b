"""Per-model training defaults: what "auto" means for a base model.

A randomly initialised built-in model and a pretrained checkpoint need different recipes (see
docs/models.md), so each catalog entry carries its own defaults and the training recipe reads them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Method = Literal["lora", "full"]


@dataclass(frozen=True)
class TrainingDefaults:
    method: Method
    # Learning rates at learning_rate_multiplier = 1, one per method: LoRA wants a larger step.
    full_learning_rate: float
    lora_learning_rate: float
    lora_rank: int
    lora_alpha: int
    batch_size: int

    @property
    def learning_rate(self) -> float:
        """The base learning rate of the default method."""
        return self.learning_rate_for(self.method)

    def learning_rate_for(self, method: Method) -> float:
        return self.full_learning_rate if method == "full" else self.lora_learning_rate

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Pretrained checkpoints of unknown size: adapt gently, keep what the model knows (the usual LoRA recipe).
PRETRAINED_DEFAULTS = TrainingDefaults(
    method="lora",
    full_learning_rate=1e-5,
    lora_learning_rate=2e-4,
    lora_rank=16,
    lora_alpha=32,
    batch_size=4,
)

# Small pretrained chat models (about 100M parameters; measured on SmolLM2-135M-Instruct, see
# docs/training.md, '"auto" on a pretrained model'): at 2e-4 LoRA moves a small model too little for
# a short run to learn a task (held-out exact match 0.28 after 3 epochs of a 250-example routing task);
# at 1e-3 it learns the same kind of task in about one epoch and keeps its answers well formed.
SMALL_PRETRAINED_DEFAULTS = TrainingDefaults(
    method="lora",
    full_learning_rate=1e-5,
    lora_learning_rate=1e-3,
    lora_rank=16,
    lora_alpha=32,
    batch_size=4,
)
