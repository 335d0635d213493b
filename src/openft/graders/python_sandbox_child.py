"""The process a python grader runs in (stdlib only: it is started as `python -I -c <this file>`).

stdin: {"source", "pairs": [[sample, item], ...], "per_sample_s", "cpu_s", "memory_bytes",
"readable_roots", "work_dir"}. For each pair, one line on the original stdout: `RESULT {"reward": x}`
or `RESULT {"error": "..."}` or `RESULT {"timeout": true}`. Before any user code runs: CPU, memory and
file-size limits, and an audit hook that refuses sockets, new processes, native-code loading and any
file outside the Python installation and the empty working directory.
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import sys
import traceback
from typing import Any

_BLOCKED_EVENTS = (
    "socket.",
    "subprocess.",
    "os.system",
    "os.exec",
    "os.spawn",
    "os.posix_spawn",
    "os.fork",
    "os.forkpty",
    "os.kill",
    "os.chdir",
    "pty.",
    "ctypes.",
    "sys.remote_exec",
    "urllib.",
    "ftplib.",
    "smtplib.",
    "http.client.",
    "webbrowser.",
)
_PATH_EVENTS = (
    "open",
    "os.listdir",
    "os.scandir",
    "os.walk",
    "glob.glob",
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "os.chmod",
    "os.chown",
    "os.symlink",
    "os.link",
    "os.truncate",
    "shutil.",
)
_BLOCKED_IMPORTS = ("ctypes", "_ctypes", "socket", "_socket", "ssl", "_ssl", "subprocess", "_posixsubprocess")


class GraderTimeout(BaseException):
    pass


def _limit(cpu_s: int, memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))


def _install_audit_hook(readable_roots: list[str], work_dir: str) -> None:
    readable = tuple(os.path.realpath(root) + os.sep for root in readable_roots)
    writable = os.path.realpath(work_dir) + os.sep

    def inside(path: Any, roots: tuple[str, ...]) -> bool:
        if isinstance(path, int):  # an already open descriptor
            return True
        try:
            real = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return any((real + os.sep).startswith(root) for root in roots)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "import":
            if args and args[0] in _BLOCKED_IMPORTS:
                raise ImportError(f"the python grader sandbox does not allow importing {args[0]}")
            return
        if event.startswith(_BLOCKED_EVENTS):
            raise PermissionError(f"the python grader sandbox does not allow {event}")
        if event.startswith(_PATH_EVENTS) and args:
            path = args[0]
            if path is None:
                return
            writing = event != "open" or (
                len(args) > 1 and isinstance(args[1], str) and any(c in args[1] for c in "wax+")
            )
            roots = (writable,) if writing else (*readable, writable)
            if not inside(path, roots):
                raise PermissionError(
                    f"the python grader sandbox does not allow access to {os.fsdecode(path)!r}"
                )

    sys.addaudithook(hook)


def _on_alarm(signum: int, frame: Any) -> None:
    raise GraderTimeout()


def main() -> None:
    payload = json.loads(sys.stdin.read())
    out = os.fdopen(os.dup(1), "w")
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (the grader's own prints go nowhere)
    _limit(payload["cpu_s"], payload["memory_bytes"])
    os.chdir(payload["work_dir"])
    _install_audit_hook(payload["readable_roots"], payload["work_dir"])
    signal.signal(signal.SIGALRM, _on_alarm)

    def emit(result: dict[str, Any]) -> None:
        out.write("RESULT " + json.dumps(result) + "\n")
        out.flush()

    namespace: dict[str, Any] = {"__name__": "grader"}
    try:
        signal.setitimer(signal.ITIMER_REAL, payload["per_sample_s"])
        exec(compile(payload["source"], "grader.py", "exec"), namespace)
        signal.setitimer(signal.ITIMER_REAL, 0)
        grade = namespace.get("grade")
        if not callable(grade):
            raise NameError("the source defines no function grade(sample, item)")
    except GraderTimeout:
        for _ in payload["pairs"]:
            emit({"timeout": True})
        return
    except BaseException as exc:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for _ in payload["pairs"]:
            emit({"error": _describe(exc)})
        return
    for sample, item in payload["pairs"]:
        try:
            signal.setitimer(signal.ITIMER_REAL, payload["per_sample_s"])
            value = grade(sample, item)
            signal.setitimer(signal.ITIMER_REAL, 0)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                emit({"error": f"grade() returned {type(value).__name__}; it must return a number"})
            elif not math.isfinite(value):
                emit({"error": f"grade() returned {value}; it must return a finite number"})
            else:
                emit({"reward": float(value)})
        except GraderTimeout:
            emit({"timeout": True})
        except BaseException as exc:
            signal.setitimer(signal.ITIMER_REAL, 0)
            emit({"error": _describe(exc)})


def _describe(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "MemoryError: the grader used more memory than the sandbox allows"
    frames = traceback.extract_tb(exc.__traceback__)
    where = next((f" (grader.py line {f.lineno})" for f in reversed(frames) if f.filename == "grader.py"), "")
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return (text + where)[:2000]


main()
