"""Export time, peak memory and check agreement per format on smollm2-135m-instruct.

    python bench/export_formats.py [--models-dir DIR] [--adapter DIR] [--work DIR]

Takes a LoRA adapter of smollm2-135m-instruct (`--adapter`, a checkpoint directory), or makes one:
rank 16 on every linear layer with random (not zero) B matrices, so that the merge changes every
adapted weight, as a trained adapter does. Each export runs in a fresh process, so its peak RSS is its
own; the check (greedy answers of the export against openft's engine, 3 prompts x 32 tokens) is timed
apart from the export. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

RUNS = [
    ("peft", "f16"),
    ("merged", "f16"),
    ("gguf", "f32"),
    ("gguf", "f16"),
    ("gguf", "bf16"),
    ("gguf", "q8_0"),
]
BASE_NAME = "smollm2-135m-instruct"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=Path("/tmp/openft-bench-models"))
    parser.add_argument("--adapter", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=Path("/tmp/openft-bench-export"))
    parser.add_argument("--one", nargs=2, metavar=("FORMAT", "GGUF_TYPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    base = converted_base(args.models_dir)
    adapter = args.adapter or make_adapter(base, args.work / "adapter")
    if args.one:
        print(json.dumps(export_once(base, adapter, args.work, *args.one)))
        return
    rows = []
    for export_format, gguf_type in RUNS:
        child = [sys.executable, __file__, "--models-dir", str(args.models_dir), "--adapter", str(adapter)]
        child += ["--work", str(args.work), "--one", export_format, gguf_type]
        done = subprocess.run(child, check=True, capture_output=True, text=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"machine: {platform.machine()}, {len_cpus()} CPUs, Python {platform.python_version()}\n")
    print("| format | export s | peak RSS MiB | size MB | check s | answers agree | answer tokens agree |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['label']} | {row['export_s']:.1f} | {row['peak_rss_mib']:.0f} | {row['size_mb']:.0f} | "
            f"{row['check_s']:.1f} | {row['n_agree']}/{row['n_prompts']} | {row['token_agreement']:.1%} |"
        )


def len_cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def converted_base(models_dir: Path) -> Path:
    from openft.models.gguf_import import ensure_converted
    from openft.models.packaged import PACKAGED_MODELS, locate_packaged_file

    spec = PACKAGED_MODELS[BASE_NAME]
    gguf_file = locate_packaged_file(spec)
    if gguf_file is None:
        sys.exit(f"{spec.distribution} is not installed: {spec.install_command}")
    return ensure_converted(gguf_file, models_dir)


def make_adapter(base: Path, out: Path) -> Path:
    if (out / "adapter_config.json").is_file():
        return out
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    with torch.no_grad():  # random B at a trained adapter's scale: a change, not noise that wrecks the model
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.mul_(0.02)
    peft_model.save_pretrained(str(out))
    (out / "base_model.json").write_text(json.dumps({"name": BASE_NAME, "path": str(base), "method": "lora"}))
    return out


def export_once(
    base: Path, adapter: Path, work: Path, export_format: str, gguf_type: str
) -> dict[str, object]:
    import shutil

    from openft.export.check import check_export
    from openft.export.run import export_model
    from openft.export.source import checked_request, source_of
    from openft.inference.types import ModelRef

    model = ModelRef(f"ft:{BASE_NAME}:bench::adapter", str(base), str(adapter), str(base), 8192)
    source = source_of(model, BASE_NAME)
    out = work / f"{export_format}-{gguf_type}"
    shutil.rmtree(out, ignore_errors=True)
    request = checked_request(export_format, gguf_type)
    result = export_model(source, request, out, base_description="bench")
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    check = check_export(source, export_format, out)
    label = f"gguf {gguf_type}" if export_format == "gguf" else export_format
    return {
        "label": label,
        "export_s": result.seconds,
        "peak_rss_mib": peak_rss_mib,
        "size_mb": sum(p.stat().st_size for p in result.files) / 1e6,
        "check_s": time.perf_counter() - started,
        "n_agree": check.n_agree,
        "n_prompts": len(check.rows),
        "token_agreement": check.token_agreement,
    }


if __name__ == "__main__":
    main()
