"""The recipe as a process: its command line, exit statuses and last words.

    python -m openft.train.run CONFIG_JSON_PATH [--resume-from CHECKPOINT_DIR]

runs the recipe of the config's training method (`recipe_main` of openft.train.sft or
openft.train.dpo) on a saved config (the job worker calls it directly, with the config it resolved).
stdout carries one JSON object per line (see openft.train.reporting), ending with a "done" line (or a
"failed" line when training diverged); `<output_dir>/control` holding `cancel` or `pause` stops the run
between steps. Exit status 0 for succeeded, cancelled and paused; otherwise 1 (bad config or data, or a
learning rate that made training diverge) or 2 (anything else, such as running out of memory), with a
one-line explanation as the last line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from openft.train.config import ConfigError, SFTConfig
from openft.train.divergence import TrainingDiverged
from openft.train.environment import set_model_process_environment
from openft.train.examples import DataError
from openft.train.reporting import JsonLinesReporter, Reporter, SilentReporter

if TYPE_CHECKING:
    from openft.train.loop import TrainResult

EXIT_BAD_INPUT = 1
EXIT_FAILED = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m openft.train.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="the resolved SFTConfig as JSON")
    parser.add_argument("--resume-from", type=Path, default=None, help="a checkpoint directory to continue")
    args = parser.parse_args(argv)
    set_model_process_environment(training=True)
    try:
        config = SFTConfig.load(args.config)
    except (ConfigError, FileNotFoundError) as exc:
        return report_failure(EXIT_BAD_INPUT, str(exc), is_main_process())
    return recipe_for(config)(config, args.resume_from)


class TrainFunction(Protocol):
    """A recipe's `train_<method>(config, reporter, *, resume_from)`."""

    def __call__(self, config: SFTConfig, reporter: Reporter, *, resume_from: Path | None) -> TrainResult: ...


def recipe_for(config: SFTConfig) -> Callable[[SFTConfig, Path | None], int]:
    """The `recipe_main` of the config's training method; torch loads here, after the config is checked."""
    if config.training_method == "dpo":
        from openft.train.dpo import recipe_main as preference_main

        return preference_main
    if config.training_method == "reinforcement":
        from openft.train.reinforce import recipe_main as reinforcement_main

        return reinforcement_main
    from openft.train.sft import recipe_main

    return recipe_main


def run_recipe(train: TrainFunction, config: SFTConfig, resume_from: Path | None) -> int:
    """The recipe as a job's process (what the worker runs, directly or under torchrun): rank 0 reports
    JSON lines on stdout and obeys the control file; returns the exit status (openft.train.run)."""
    is_main = is_main_process()
    try:
        if resume_from is not None and not resume_from.is_dir():
            raise ConfigError(f"--resume-from {resume_from}: no such checkpoint directory")
        control = config.layout.control_file
        control.parent.mkdir(parents=True, exist_ok=True)
        if is_main:  # a word left by an earlier run (the pause that this run resumes) is not for this one
            control.unlink(missing_ok=True)
        reporter = JsonLinesReporter(sys.stdout, control)
        result = train(config, reporter if is_main else SilentReporter(), resume_from=resume_from)
    except TrainingDiverged as exc:
        return report_divergence(exc, is_main)
    except (ConfigError, DataError, FileNotFoundError) as exc:
        return report_failure(EXIT_BAD_INPUT, str(exc), is_main)
    except MemoryError:
        return report_failure(EXIT_FAILED, "out of memory: lower batch_size or max_seq_length", is_main)
    except Exception as exc:
        return report_failure(EXIT_FAILED, describe_failure(exc), is_main)
    if is_main:
        reporter.done(result.status, result.trained_tokens, result.final_path)
    return 0


def is_main_process() -> bool:
    """Rank 0 under torchrun (and a single process): the one that reports and writes."""
    return os.environ.get("RANK", "0") == "0"


def report_divergence(exc: TrainingDiverged, is_main: bool) -> int:
    if is_main:
        JsonLinesReporter(sys.stdout, Path(os.devnull)).failed(exc.code, str(exc), exc.param)
    print(f"openft.train: error: {exc}", file=sys.stderr, flush=True)
    return EXIT_BAD_INPUT


def report_failure(code: int, message: str, is_main: bool) -> int:
    if code == EXIT_FAILED:
        traceback.print_exc(file=sys.stderr)
    if is_main:
        JsonLinesReporter(sys.stdout, Path(os.devnull)).message(message, level="error")
    print(f"openft.train: error: {message}", file=sys.stderr, flush=True)
    return code


def describe_failure(exc: Exception) -> str:
    if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without importing torch
        return "out of GPU memory: lower batch_size or max_seq_length"
    return f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    sys.exit(main())
