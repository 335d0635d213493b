"""A spare recipe process: started before its job, so that the job does not wait for imports.

Importing torch, transformers and PEFT takes a few seconds, most of a short job's start-up. The worker
keeps one `python -m openft.worker.entry --spare` process ready, which has done those imports and
waits on stdin for its job; a job hands it the run spec and its stderr log, and the process then runs
exactly like a freshly started one (its own process group, killed with the worker) and exits. The next
spare is started once the job is over. It touches no device before its job, so it holds no GPU memory.

Only single-process training uses a spare; torchrun starts its ranks itself.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

from openft.worker.recipe_process import start_recipe_process

log = logging.getLogger("openft.worker")

# After a spare died without a job (a broken environment, the OOM killer), wait this long before the
# next one, so a spare that cannot start does not keep a CPU busy; jobs start cold meanwhile.
RESTART_AFTER_CRASH_S = 60.0


class SpareRecipe:
    """At most one waiting recipe process. Start and take it from the same thread, the worker's: the
    kernel kills it (PR_SET_PDEATHSIG) when the thread that started it ends."""

    def __init__(self, log_path: Path, *, allocator: str) -> None:
        self.log_path = log_path  # the spare's stderr until it has a job; each spare starts it anew
        self.allocator = allocator  # the train_allocator setting
        self._process: subprocess.Popen[str] | None = None
        self._crashed_at: float | None = None

    @property
    def pid(self) -> int | None:
        """The waiting spare's process id, if one was started and not yet taken."""
        return self._process.pid if self._process is not None else None

    def ensure_started(self) -> None:
        """Start a spare unless one is waiting (or the last one crashed only a moment ago)."""
        if self._process is not None and self._process.poll() is None:
            return
        if self._process is not None:
            self._note_crash(self._process)
        if self._crashed_at is not None and time.time() - self._crashed_at < RESTART_AFTER_CRASH_S:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as stderr:
            self._process = start_recipe_process(
                [sys.executable, "-m", "openft.worker.entry", "--spare"],
                stderr,
                allocator=self.allocator,
                stdin=subprocess.PIPE,
            )

    def take(self, spec_path: Path, stderr_path: Path) -> subprocess.Popen[str] | None:
        """Hand the job to the waiting spare; its process, now the job's, or None if there is no live
        spare (the caller then starts a fresh process)."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is not None:
            self._note_crash(process)
            return None
        handoff = json.dumps({"spec_path": str(spec_path), "stderr_path": str(stderr_path)})
        assert process.stdin is not None
        try:
            process.stdin.write(handoff + "\n")
            process.stdin.close()
        except BrokenPipeError:  # it died just now
            process.wait()
            self._note_crash(process)
            return None
        return process

    def close(self) -> None:
        """Stop the waiting spare, if any; it has no job, so nothing is lost."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.communicate()  # reaps it and closes its pipes

    def _note_crash(self, process: subprocess.Popen[str]) -> None:
        self._process, self._crashed_at = None, time.time()
        log.warning(
            "the spare recipe process exited with status %s before it had a job; jobs start a fresh "
            "process meanwhile. Its output: %s",
            process.returncode,
            self.log_path,
        )
