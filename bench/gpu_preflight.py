"""The dry run's checks: what bench/gpu_check.sh needs on the GPU machine is here and fits what is there.

Torch-free, so it runs anywhere in a second: the wheels in .whl/ against bench/gpu_wheels.txt (present,
one version each, built for CPython 3.12 on x86-64 Linux), every requirement of those wheels and of
openft's pyproject met by another wheel or by the machine's recorded packages (bench/gpu_machine.py),
the paths the run uses, and the size of what travels (64 MiB at most).

Each check ends "ok", "assumed" (the machine has the package, its version is not on record), "missing"
(wheels not downloaded yet: bench/gpu_wheels.sh) or "fail" (something to fix before a GPU session).
"""

from __future__ import annotations

import subprocess
import tomllib
import zipfile
from dataclasses import asdict, dataclass
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import parse_wheel_filename
from packaging.version import Version

from bench import gpu_machine

MAX_TRAVEL_BYTES = 64 * 1024 * 1024
# Markers evaluated as on the GPU machine.
MACHINE_MARKERS = {
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}
NEEDED_PATHS = (
    "src/openft/train/sft.py",
    "src/openft/inference/local.py",
    "tests/train",
    "tests/inference",
    "bench/gpu_check.sh",
    "bench/gpu_wheels.txt",
)


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | assumed | missing | fail
    detail: str = ""


@dataclass(frozen=True)
class Wheel:
    name: str  # normalized
    version: str
    path: Path
    requires: tuple[str, ...]


def pinned(requirements_file: Path) -> dict[str, str]:
    """name -> version of each `name==version` line (comments and blank lines skipped)."""
    pins: dict[str, str] = {}
    for line in requirements_file.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            (spec,) = requirement.specifier  # one exact pin per line
            pins[gpu_machine.normalize(requirement.name)] = spec.version
    return pins


def read_wheel(path: Path) -> Wheel:
    name, version, _, _ = parse_wheel_filename(path.name)
    with zipfile.ZipFile(path) as archive:
        metadata_name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    return Wheel(
        gpu_machine.normalize(name), str(version), path, tuple(metadata.get_all("Requires-Dist") or ())
    )


def fits_machine(path: Path) -> bool:
    """Whether a wheel installs on CPython 3.12, x86-64 Linux."""
    _, _, _, tags = parse_wheel_filename(path.name)
    return any(
        tag.interpreter in ("py3", "py312", "cp312")
        and tag.abi in ("none", "abi3", "cp312")
        and (
            tag.platform == "any"
            or (tag.platform.startswith("manylinux") and tag.platform.endswith("x86_64"))
        )
        for tag in tags
    )


def check_wheels(wheel_dir: Path, pins: dict[str, str]) -> tuple[list[Check], dict[str, Wheel]]:
    """One check per pinned wheel, plus one per stray or duplicate file; the wheels found, by name."""
    found: dict[str, list[Wheel]] = {}
    for path in sorted(wheel_dir.glob("*.whl")) if wheel_dir.is_dir() else []:
        wheel = read_wheel(path)
        found.setdefault(wheel.name, []).append(wheel)
    checks = []
    for name, version in pins.items():
        wheels = found.get(name, [])
        if not wheels:
            checks.append(Check(f"wheel {name}=={version}", "missing", "run bench/gpu_wheels.sh"))
        elif len(wheels) > 1:
            names = ", ".join(w.path.name for w in wheels)
            checks.append(Check(f"wheel {name}", "fail", f"several versions stop the install: {names}"))
        elif wheels[0].version != version:
            checks.append(Check(f"wheel {name}=={version}", "fail", f"found {wheels[0].path.name}"))
        elif not fits_machine(wheels[0].path):
            checks.append(
                Check(f"wheel {name}", "fail", f"{wheels[0].path.name} is not for CPython 3.12 x86-64")
            )
        else:
            checks.append(Check(f"wheel {name}=={version}", "ok"))
    for name in sorted(set(found) - set(pins)):
        checks.append(Check(f"wheel {name}", "fail", "not in bench/gpu_wheels.txt: remove it from .whl/"))
    return checks, {name: wheels[0] for name, wheels in found.items() if len(wheels) == 1}


def check_requirement(text: str, pins: dict[str, str], owner: str) -> Check | None:
    """Is `text` (a Requires-Dist or pyproject dependency) met by a pinned wheel or the machine's own
    packages? None: not needed there."""
    requirement = Requirement(text)
    if requirement.marker is not None and not requirement.marker.evaluate(MACHINE_MARKERS):
        return None
    name = gpu_machine.normalize(requirement.name)
    label = f"{owner} needs {requirement.name}{requirement.specifier}"
    version = pins.get(name) or gpu_machine.VERSIONS.get(name)
    if version is not None:
        if requirement.specifier.contains(Version(version), prereleases=True):
            where = "a wheel" if name in pins else "the machine"
            return Check(label, "ok", f"{version} from {where}")
        return Check(label, "fail", f"{version} there does not satisfy it")
    if name in gpu_machine.PRESENT:
        return Check(
            label, "assumed" if requirement.specifier else "ok", "on the machine, version not recorded"
        )
    return Check(label, "fail", "neither on the machine nor among the wheels: add it to bench/gpu_wheels.txt")


def check_requirements(root: Path, pins: dict[str, str], wheels: dict[str, Wheel]) -> list[Check]:
    """openft's dependencies and every wheel's own, against the pins and the machine's packages."""
    checks: list[Check] = []
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    python = ".".join(map(str, gpu_machine.PYTHON))
    if not Requirement(f"python{project['requires-python']}").specifier.contains(python):
        checks.append(
            Check("openft requires-python", "fail", f"{project['requires-python']} excludes {python}")
        )
    for text in project["dependencies"]:
        check = check_requirement(text, pins, "openft")
        if check is not None:
            checks.append(check)
    for wheel in wheels.values():
        for text in wheel.requires:
            check = check_requirement(text, pins, wheel.name)
            if check is not None and check.status != "ok":
                checks.append(check)  # only the problems: a wheel's ok requirements are many
    return checks


def check_paths(root: Path) -> list[Check]:
    return [
        Check(
            f"path {path}",
            "ok" if (root / path).exists() else "fail",
            "" if (root / path).exists() else "absent",
        )
        for path in NEEDED_PATHS
    ]


def check_travel_size(root: Path) -> Check:
    """What a device call sends: tracked and untracked-not-ignored files, plus the carried .whl/."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout.split(b"\0")
    except (OSError, subprocess.CalledProcessError):
        return Check("size of what travels", "assumed", "not a git checkout: not measured")
    paths = [root / name.decode() for name in listed if name]
    n_bytes = sum(path.stat().st_size for path in paths if path.is_file())
    n_bytes += sum(path.stat().st_size for path in (root / ".whl").glob("*.whl"))
    detail = f"{n_bytes / 2**20:.1f} MiB of at most {MAX_TRAVEL_BYTES / 2**20:.0f} MiB (tree + .whl)"
    return Check("size of what travels", "ok" if n_bytes <= MAX_TRAVEL_BYTES else "fail", detail)


def preflight(root: Path, wheel_dir: Path | None = None) -> list[Check]:
    pins = pinned(root / "bench" / "gpu_wheels.txt")
    wheel_checks, wheels = check_wheels(wheel_dir or root / ".whl", pins)
    return [
        *check_paths(root),
        *wheel_checks,
        *check_requirements(root, pins, wheels),
        check_travel_size(root),
    ]


def summary(checks: list[Check]) -> dict[str, object]:
    counts: dict[str, int] = {}
    for check in checks:
        counts[check.status] = counts.get(check.status, 0) + 1
    return {"counts": counts, "checks": [asdict(check) for check in checks]}


def machine_versions_note() -> str:
    known = ", ".join(f"{name} {version}" for name, version in gpu_machine.VERSIONS.items() if version)
    python = ".".join(map(str, gpu_machine.PYTHON))
    return f"GPU machine on record: Python {python}, CUDA {gpu_machine.TORCH_CUDA}, {known}"
