"""The recipe as a process: what the job worker starts (directly, or under torchrun).

    python -m openft.train.run CONFIG_JSON_PATH [--resume-from CHECKPOINT_DIR]

stdout carries one JSON object per line (see openft.train.reporting), ending with a "done" line (or a
"failed" line when training diverged); `<output_dir>/control` holding `cancel` or `pause` stops the run
between steps. Exit status 0 for succeeded, cancelled and paused; otherwise 1 (bad config or data, or
a learning rate that made training diverge) or 2 (anything else, such as running out of memory), with a
one-line explanation as the last line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from openft.train.config import ConfigError, SFTConfig
from openft.train.divergence import TrainingDiverged
from openft.train.environment import set_model_process_environment
from openft.train.examples import DataError
from openft.train.reporting import JsonLinesReporter, Reporter, SilentReporter

if TYPE_CHECKING:
    from openft.train.sft import TrainResult

EXIT_BAD_INPUT = 1
EXIT_FAILED = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m openft.train.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="the resolved SFTConfig as JSON")
    parser.add_argument("--resume-from", type=Path, default=None, help="a checkpoint directory to continue")
    args = parser.parse_args(argv)
    is_main = os.environ.get("RANK", "0") == "0"
    set_model_process_environment()
    try:
        config = SFTConfig.load(args.config)
        if args.resume_from is not None and not args.resume_from.is_dir():
            raise ConfigError(f"--resume-from {args.resume_from}: no such checkpoint directory")
        control = Path(config.output_dir) / "control"
        control.parent.mkdir(parents=True, exist_ok=True)
        if is_main:  # a word left by an earlier run (the pause that this run resumes) is not for this one
            control.unlink(missing_ok=True)
        reporter = JsonLinesReporter(sys.stdout, control)
        result = _train(config, reporter if is_main else SilentReporter(), args.resume_from)
    except TrainingDiverged as exc:
        if is_main:
            JsonLinesReporter(sys.stdout, Path(os.devnull)).failed(exc.code, str(exc), exc.param)
        print(f"openft.train: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    except (ConfigError, DataError, FileNotFoundError) as exc:
        return _fail(EXIT_BAD_INPUT, str(exc), is_main)
    except MemoryError:
        return _fail(EXIT_FAILED, "out of memory: lower batch_size or max_seq_length", is_main)
    except Exception as exc:
        return _fail(EXIT_FAILED, _describe(exc), is_main)
    if is_main:
        reporter.done(result.status, result.trained_tokens, result.final_path)
    return 0


def _train(config: SFTConfig, reporter: Reporter, resume_from: Path | None) -> TrainResult:
    from openft.train.sft import train_sft  # torch loads here, after the config has been checked

    return train_sft(config, reporter, resume_from=resume_from)


def _describe(exc: Exception) -> str:
    if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without importing torch
        return "out of GPU memory: lower batch_size or max_seq_length"
    return f"{type(exc).__name__}: {exc}"


def _fail(code: int, message: str, is_main: bool) -> int:
    if code == EXIT_FAILED:
        traceback.print_exc(file=sys.stderr)
    if is_main:
        JsonLinesReporter(sys.stdout, Path(os.devnull)).message(message, level="error")
    print(f"openft.train: error: {message}", file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
