"""Base models: the built-in offline models and the catalog of base models.

Nothing here imports torch or transformers at import time; building or loading a model does.
"""

from openft.models.builtin import BUILTIN_MODELS, BuiltinSpec, build_builtin_model, ensure_builtin_model
from openft.models.catalog import (
    Catalog,
    InvalidModelError,
    ModelEntry,
    ModelUnavailableError,
    UnknownModelError,
)
from openft.models.chat_template import CHATML_TEMPLATE, parse_tool_calls
from openft.models.defaults import PRETRAINED_DEFAULTS, SMALL_PRETRAINED_DEFAULTS, TrainingDefaults

__all__ = [
    "BUILTIN_MODELS",
    "CHATML_TEMPLATE",
    "PRETRAINED_DEFAULTS",
    "SMALL_PRETRAINED_DEFAULTS",
    "BuiltinSpec",
    "Catalog",
    "InvalidModelError",
    "ModelEntry",
    "ModelUnavailableError",
    "TrainingDefaults",
    "UnknownModelError",
    "build_builtin_model",
    "ensure_builtin_model",
    "parse_tool_calls",
]
