"""What the GPU machine that bench/gpu_check.sh runs on is known to hold, and what GPUs can do.

The lent machines (one NVIDIA H100 or H200) run Python 3.12 with PyTorch 2.11 built for CUDA 13,
transformers and PEFT preinstalled, and no TRL; nothing can be fetched there. The versions below are the
ones recorded for that machine's image; `None` means the package is there but its version was not
recorded (the real run reads and reports it). The dry run checks openft's and the wheels' requirements
against this table, so a version clash shows up here rather than in the few minutes of a GPU session.
"""

from __future__ import annotations

import re

PYTHON = (3, 12)
TORCH_CUDA = "13.0"

# Recorded versions (pip list on the machine's image).
VERSIONS: dict[str, str | None] = {
    "torch": "2.11.0",
    "transformers": "5.17.0",
    "peft": None,
    "accelerate": "1.15.0",
    "huggingface-hub": "1.33.0",
    "numpy": "2.5.2",
    "safetensors": "0.8.0",
    "tokenizers": "0.23.2",
    "triton": "3.6.0",
    "sentencepiece": "0.2.2",
    "tiktoken": "0.14.0",
}

# Every other package of the image, by name (versions not recorded).
_IMAGE_PACKAGES = """
    absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch
    build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage
    cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops
    equinox etils execnet filelock flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch
    grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna imageio iniconfig
    interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver
    lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown
    markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict
    multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro
    nvidia-ml-py onnx onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum
    opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy
    portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments
    pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock
    pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu
    safetensors scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece
    sentence-transformers setuptools shellingham simplejson six sortedcontainers statsmodels sympy
    tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm
    tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm
    transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig
    werkzeug wheel wrapt xarray xxhash yarl zipp
"""
PRESENT = frozenset(_IMAGE_PACKAGES.split()) | frozenset(VERSIONS)

# Dense bf16 matrix-multiply peaks (TFLOP/s, no sparsity) from the vendors' data sheets, matched against
# torch.cuda.get_device_name() in this order (the first substring that matches wins).
BF16_PEAK_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.0),
    ("GH200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM (reported as "NVIDIA H100 80GB HBM3")
    ("B200", 2250.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("A10G", 125.0),
    ("A10", 125.0),
    ("L4", 121.0),
)


def bf16_peak_tflops(device_name: str) -> float | None:
    """The card's dense bf16 peak, or None for a card not in the table."""
    for key, tflops in BF16_PEAK_TFLOPS:
        if key in device_name:
            return tflops
    return None


def normalize(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()
