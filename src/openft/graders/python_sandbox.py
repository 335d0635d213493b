"""Run a python grader's `grade(sample, item)` on many samples, in a separate, limited process.

The child (python_sandbox_child.py) is started with `python -I` in an empty temporary directory with an
empty environment, in a network namespace of its own where the system allows one (`unshare -n`), under
CPU, memory, file-size and wall-clock limits, with an audit hook that refuses sockets, processes and
files outside the Python installation. A sample whose grading times out, crashes the process or raises
is reported on its own (OpenAI's flags) and the others go on in a fresh process.
"""

from __future__ import annotations

import functools
import json
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openft.graders.outcome import ErrorFlags, Outcome

CHILD_SOURCE = (Path(__file__).parent / "python_sandbox_child.py").read_text()
_STARTUP_S = 10.0  # interpreter start and the grader module's own imports


@dataclass(frozen=True)
class SandboxLimits:
    per_sample_s: float = 5.0  # wall-clock per grade() call
    cpu_s: int = 60  # CPU seconds for a whole batch of samples
    memory_mb: int = 1024  # address space of the process


def grade_with_python(
    source: str,
    pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
    limits: SandboxLimits = SandboxLimits(),
) -> list[Outcome]:
    """One Outcome per (sample, item) pair, in order."""
    outcomes: list[Outcome] = []
    pending = list(pairs)
    while pending:
        results, died = _run_child(source, pending, limits)
        outcomes += [_outcome(result) for result in results]
        pending = pending[len(results) :]
        if pending and died is not None:  # the sample being graded when the process died
            outcomes.append(died)
            pending = pending[1:]
    return outcomes


def _run_child(
    source: str, pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], limits: SandboxLimits
) -> tuple[list[dict[str, Any]], Outcome | None]:
    with tempfile.TemporaryDirectory(prefix="openft-grader-") as work_dir:
        payload = {
            "source": source,
            "pairs": [[dict(sample), dict(item)] for sample, item in pairs],
            "per_sample_s": limits.per_sample_s,
            "cpu_s": limits.cpu_s,
            "memory_bytes": limits.memory_mb << 20,
            "readable_roots": _readable_roots(),
            "work_dir": work_dir,
        }
        command = [*_network_isolation(), sys.executable, "-I", "-c", CHILD_SOURCE]
        wall_s = _STARTUP_S + limits.per_sample_s * len(pairs) * 1.5
        started = time.monotonic()
        try:
            completed = subprocess.run(
                command,
                input=json.dumps(payload),
                capture_output=True,
                text=True,
                cwd=work_dir,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                timeout=wall_s,
                check=False,
            )
            stdout, stderr, code = completed.stdout, completed.stderr, completed.returncode
        except subprocess.TimeoutExpired as exc:
            stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            stderr, code = "", None
        except OSError as exc:
            failure = Outcome.failed(
                python_grader_server_error=True, python_grader_server_error_type=type(exc).__name__
            )
            return [], failure
    results = [json.loads(line[7:]) for line in stdout.splitlines() if line.startswith("RESULT ")]
    if len(results) >= len(pairs):
        return results[: len(pairs)], None
    return results, _death(code, stderr, time.monotonic() - started, limits)


def _outcome(result: Mapping[str, Any]) -> Outcome:
    if "reward" in result:
        return Outcome(float(result["reward"]))
    if result.get("timeout"):
        return _stopped("grade() did not return within the sandbox's time limit")
    return Outcome.failed(
        python_grader_runtime_error=True, python_grader_runtime_error_details=str(result["error"])
    )


def _death(code: int | None, stderr: str, elapsed_s: float, limits: SandboxLimits) -> Outcome:
    if code is None:
        return _stopped("the grader process ran past its wall-clock limit and was stopped")
    if code in (-9, -24, 137, 152):  # SIGKILL / SIGXCPU: the CPU limit
        return _stopped(f"the grader process used more than {limits.cpu_s} CPU seconds and was stopped")
    last = stderr.strip().splitlines()[-1:] or [f"exit status {code}"]
    return Outcome.failed(
        python_grader_runtime_error=True, python_grader_runtime_error_details=last[0][:2000]
    )


def _stopped(why: str) -> Outcome:
    """OpenAI's flags for a grader that did not return in time (or in its CPU budget)."""
    flags = ErrorFlags(
        unresponsive_reward_error=True,
        python_grader_runtime_error=True,
        python_grader_runtime_error_details=why,
    )
    return Outcome(0.0, flags)


def _readable_roots() -> list[str]:
    paths = sysconfig.get_paths()
    roots = {
        sys.prefix,
        sys.base_prefix,
        paths["stdlib"],
        paths["platstdlib"],
        paths["purelib"],
        paths["platlib"],
    }
    roots.update(site.getsitepackages())
    return sorted(roots)


@functools.cache
def _network_isolation() -> tuple[str, ...]:
    """`unshare -n` (or, unprivileged, `unshare -rn`) where it works here: no network device at all."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    for flags in ("-n", "-rn"):
        try:
            probe = subprocess.run([unshare, flags, "true"], capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return (unshare, flags)
    return ()
