"""openft.train: the fine-tuning recipes (see docs/training.md).

Importing this package stays cheap: the names here are torch-free. The recipe itself is
`openft.train.sft.train_sft` (imports torch), or as a process `python -m openft.train.run CONFIG`.
"""

from openft.train.config import ConfigError, Hyperparameters, SFTConfig, auto_n_epochs, resolve_config
from openft.train.reporting import JsonLinesReporter, MemoryReporter, Reporter

__all__ = [
    "ConfigError",
    "Hyperparameters",
    "JsonLinesReporter",
    "MemoryReporter",
    "Reporter",
    "SFTConfig",
    "auto_n_epochs",
    "resolve_config",
]
