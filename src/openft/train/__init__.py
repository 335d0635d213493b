"""openft.train: the fine-tuning recipes (see docs/training.md).

Importing this package stays cheap: the names here are torch-free. `openft.train.spec` turns a job into
a recipe config; the recipe itself is `openft.train.sft` (imports torch): `train_sft` in this process,
`recipe_main` as the job's process (or `python -m openft.train.run CONFIG`).
"""

from openft.train.config import SFTConfig
from openft.train.reporting import JsonLinesReporter, MemoryReporter, Reporter
from openft.train.spec import ConfigError, HyperparameterError, SupervisedHyperparameters, resolve_supervised

__all__ = [
    "ConfigError",
    "HyperparameterError",
    "JsonLinesReporter",
    "MemoryReporter",
    "Reporter",
    "SFTConfig",
    "SupervisedHyperparameters",
    "resolve_supervised",
]
