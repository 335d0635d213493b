"""`python -m openft.worker.entry RUN_SPEC.json`: the training subprocess of one job.

Turns the job's run spec into a fully resolved recipe config (building a built-in base model on first
use), saves it, then runs the recipe as `python -m openft.train.run` would, whose JSON-lines reports on
stdout the worker relays. Runs only in the subprocess, so the server never imports torch.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    # Set before anything imports torch (the catalog may build a model): the recipe's thread policy.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from openft.models.catalog import Catalog
    from openft.train import run
    from openft.train.config import Hyperparameters, resolve_config

    spec = json.loads(Path(argv[0]).read_text())
    catalog = Catalog(Path(spec["models_dir"]))
    entry = catalog.get(spec["base_model"])
    base_model_path, init_adapter_path = str(catalog.resolve_path(entry.name)), spec["init_adapter_path"]
    if init_adapter_path and not (Path(init_adapter_path) / "adapter_config.json").exists():
        # Continuing a fully fine-tuned model: its checkpoint is a complete model, the new starting point.
        base_model_path, init_adapter_path = init_adapter_path, None
    config = resolve_config(
        Hyperparameters.from_dict(spec["hyperparameters"]),
        n_train_examples=_count_examples(Path(spec["training_file"])),
        base_model_name=entry.name,
        base_model_path=base_model_path,
        defaults=entry.defaults,
        training_file=spec["training_file"],
        validation_file=spec["validation_file"],
        output_dir=spec["output_dir"],
        seed=spec["seed"],
        init_adapter_path=init_adapter_path,
        context_length=entry.context_length,
    )
    # Under torchrun every rank resolves the same config; each writes it whole and renames it into place.
    config_path = Path(spec["output_dir"]) / "config.json"
    partial = config_path.with_name(f".config.{os.getpid()}.json")
    partial.write_text(config.to_json())
    os.replace(partial, config_path)
    args = [str(config_path)]
    if spec.get("resume_from"):
        args += ["--resume-from", spec["resume_from"]]
    raise SystemExit(run.main(args))


def _count_examples(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


if __name__ == "__main__":
    main(sys.argv[1:])
