"""Starting a recipe process: the one way the worker runs training code (fresh, or as a spare)."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
from typing import IO

from openft.train.environment import training_process_environment

PR_SET_PDEATHSIG = 1


def start_recipe_process(
    command: list[str], stderr: IO[bytes], *, allocator: str, stdin: int | None = None
) -> subprocess.Popen[str]:
    """A recipe process whose JSON-lines reports can be read from its stdout; `allocator` is the
    train_allocator setting (openft.train.environment.training_process_environment)."""
    return subprocess.Popen(
        command,
        env=training_process_environment(allocator),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        bufsize=1,
        preexec_fn=_die_with_parent,
        start_new_session=True,  # its own process group: torchrun's ranks can be stopped with it
    )


def _die_with_parent() -> None:
    """Linux: the recipe gets SIGKILL when the worker dies, so no orphan keeps a device or writes a
    checkpoint while another worker resumes the job. (The kernel watches the thread that started the
    process, not the whole worker process.)"""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
