"""`python -m openft.worker.entry RUN_SPEC.json`: the training subprocess of one job.

Turns the job's run spec into a fully resolved recipe config through the job spec (openft.train.spec,
which builds a built-in base model on first use), saves it, then runs the recipe's entry,
`openft.train.sft.recipe_main`, whose JSON-lines reports on stdout the worker relays. Runs only in the
subprocess, so the server never imports torch.

`python -m openft.worker.entry --spare` is the same process started before its job (see
openft.worker.spare): it imports the recipe's libraries first, then reads one line from stdin, a JSON
object naming the run spec and the job's stderr log, and carries on as above. End of input instead
means that no job is coming: it exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

from openft.train import spec
from openft.train.environment import set_model_process_environment

SPARE_FLAG = "--spare"


def main(argv: list[str]) -> int:
    """Runs the job of the run spec argv[0]; returns the recipe's exit status."""
    set_model_process_environment(training=True)
    from openft.train.run import recipe_for

    run = json.loads(Path(argv[0]).read_text())
    config = spec.resolve_job(
        run.get("method", "supervised"),
        run["hyperparameters"],
        base=spec.find_base_model(Path(run["models_dir"]), run["base_model"]),
        training_file=Path(run["training_file"]),
        validation_file=Path(run["validation_file"]) if run["validation_file"] else None,
        output_dir=Path(run["output_dir"]),
        seed=run["seed"],
        init_adapter_path=run["init_adapter_path"],
        precision=run.get("precision", "auto"),
        grader=run.get("grader"),
        judges=run.get("judges"),
        response_format=run.get("response_format"),
    )
    # Under torchrun every rank resolves the same config; each writes it whole and renames it into place.
    config_path = config.layout.config_file
    partial = config_path.with_name(f".config.{os.getpid()}.json")
    partial.write_text(config.to_json())
    os.replace(partial, config_path)
    return recipe_for(config)(config, Path(run["resume_from"]) if run.get("resume_from") else None)


def wait_for_job() -> list[str]:
    """A spare's life before its job: the slow imports, then the job's arguments from stdin."""
    set_model_process_environment(training=True)
    import openft.train.sft  # noqa: F401  torch and transformers; no device is touched (no CUDA context)

    with contextlib.suppress(ImportError):  # PEFT: LoRA jobs load it, full fine-tuning ones do not
        import peft  # noqa: F401
    line = sys.stdin.readline()
    if not line.strip():
        sys.exit(0)  # the worker stopped, or gave up on this spare, before it had a job for it
    handoff = json.loads(line)
    _redirect_stderr(Path(handoff["stderr_path"]))
    return [handoff["spec_path"]]


def _redirect_stderr(path: Path) -> None:
    """From now on stderr goes to the job's log: file descriptor 2, so native libraries' output too."""
    sys.stderr.flush()
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)


def _exit_now(code: int) -> None:
    """Exits without the interpreter's teardown: with torch and transformers loaded, collecting and
    freeing every object takes over a second, and the job is only done once its process has exited.
    The recipe has closed everything it wrote; only the standard streams need a flush."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    _exit_now(main(wait_for_job() if arguments == [SPARE_FLAG] else arguments))
