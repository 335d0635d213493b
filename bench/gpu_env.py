"""What the machine really has, in a process of its own: versions, the GPU, its bf16 matrix rate.

    python -m bench.gpu_env RESULT_JSON

Versions are read from the installed packages and compared with the record in bench/gpu_machine.py
(a difference is reported, not an error: the record is what the dry run planned for). The bf16 matrix
rate is measured on 8192² matrices (1024² on a CPU): the achievable ceiling beside the data-sheet peak.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import gpu_machine
from bench.gpu_preflight import pinned

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "huggingface-hub",
    "safetensors",
    "tokenizers",
    "numpy",
)


def versions() -> dict[str, str | None]:
    names = [*PACKAGES, *pinned(ROOT / "bench" / "gpu_wheels.txt")]
    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def unmet_requirements(names: list[str]) -> list[str]:
    """Requirements of the installed packages `names` that the installed versions do not meet: what
    pip would have said, had the wheels not been installed with --no-deps."""
    from packaging.requirements import Requirement

    problems = []
    for name in names:
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            try:
                version = metadata.version(requirement.name)
            except metadata.PackageNotFoundError:
                problems.append(f"{name} needs {requirement}: not installed")
                continue
            if not requirement.specifier.contains(version, prereleases=True):
                problems.append(f"{name} needs {requirement}: {version} installed")
    return problems


def matmul_tflops(device: Any, n: int, repeats: int = 10) -> float:
    import torch

    dtype = torch.bfloat16
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return 2 * n**3 * repeats / (time.perf_counter() - started) / 1e12


def describe() -> dict[str, Any]:
    import torch

    found = versions()
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "versions": found,
        "unmet_requirements": unmet_requirements([*PACKAGES, *pinned(ROOT / "bench" / "gpu_wheels.txt")]),
        "differs_from_record": {
            name: {"record": recorded, "here": found.get(name)}
            for name, recorded in gpu_machine.VERSIONS.items()
            if name in found and recorded is not None and found[name] != recorded
        },
    }
    if torch.cuda.is_available():
        device = torch.device("cuda")
        properties = torch.cuda.get_device_properties(device)
        name = torch.cuda.get_device_name(device)
        info |= {
            "device": name,
            "capability": list(torch.cuda.get_device_capability(device)),
            "memory_gib": round(properties.total_memory / 2**30, 1),
            "multiprocessors": properties.multi_processor_count,
            "bf16_peak_tflops": gpu_machine.bf16_peak_tflops(name),
            "bf16_matmul_tflops_measured": round(matmul_tflops(device, 8192), 1),
        }
    else:
        info |= {
            "device": "cpu",
            "bf16_peak_tflops": None,
            "bf16_matmul_tflops_measured": round(matmul_tflops(torch.device("cpu"), 1024, 3), 4),
        }
    return info


def main() -> None:
    info = describe()
    Path(sys.argv[1]).write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info), flush=True)


if __name__ == "__main__":
    main()
