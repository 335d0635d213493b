"""`openft migrate`'s work: copy fine-tune files and recreate fine-tuning jobs from an OpenAI-compatible
source (OpenAI itself, or another openft) onto an openft server, both reached through the openai SDK.

Files are copied once per content (SHA-256), jobs once per source id; the state file maps old ids to new
ones, so a second run copies nothing and an interrupted run resumes where it stopped. `plan` only reads
the source (and the target's file list); `apply` carries out a plan and writes the state after each copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from openft.train.spec import JOB_METHODS, HyperparameterError, parse_hyperparameters

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types import FileObject
    from openai.types.fine_tuning import FineTuningJob

Action = Literal["copy", "reuse", "done", "skip"]


class StateMismatch(Exception):
    """The state file belongs to another source or target."""


@dataclass
class MigrationState:
    """Old ids to new ones; the file is rewritten after each copy."""

    source: str
    target: str
    files: dict[str, str] = field(default_factory=dict)  # source file id -> target file id
    contents: dict[str, str] = field(default_factory=dict)  # sha256 -> target file id
    jobs: dict[str, str] = field(default_factory=dict)  # source job id -> target job id

    @classmethod
    def load(cls, path: Path, *, source: str, target: str) -> MigrationState:
        if not path.exists():
            return cls(source, target)
        data = json.loads(path.read_text())
        if (data.get("source"), data.get("target")) != (source, target):
            raise StateMismatch(
                f"{path} records a migration from {data.get('source')} to {data.get('target')}, not from "
                f"{source} to {target}: pass another --state file."
            )
        return cls(source, target, data.get("files", {}), data.get("contents", {}), data.get("jobs", {}))

    def save(self, path: Path) -> None:
        body = {
            "source": self.source,
            "target": self.target,
            "files": self.files,
            "contents": self.contents,
            "jobs": self.jobs,
        }
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
        os.replace(partial, path)  # a crash never leaves half a state file


@dataclass
class FileStep:
    source_id: str
    filename: str
    action: Action
    target_id: str | None = None
    sha256: str | None = None
    note: str = ""
    content_path: Path | None = None  # the downloaded bytes, for a copy


@dataclass
class JobStep:
    source_id: str
    source_model: str
    action: Action
    target_model: str | None = None
    request: dict[str, Any] = field(default_factory=dict)  # the target's jobs.create arguments
    target_id: str | None = None
    dropped: dict[str, str] = field(default_factory=dict)  # hyperparameter -> why the target refuses it
    note: str = ""


@dataclass
class Plan:
    files: list[FileStep]
    jobs: list[JobStep]
    workdir: tempfile.TemporaryDirectory[str] = field(repr=False)

    def close(self) -> None:
        self.workdir.cleanup()


def parse_model_map(pairs: list[str]) -> dict[str, str]:
    """`gpt-4o-mini=smollm2-135m-instruct` pairs (several, or comma-separated) as a dict."""
    mapping: dict[str, str] = {}
    for item in (part.strip() for pair in pairs for part in pair.split(",")):
        if not item:
            continue
        source, sep, target = item.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ValueError(
                f"--model-map {item!r}: write SOURCE_MODEL=TARGET_MODEL, e.g. gpt-4o-mini=openft-tiny"
            )
        mapping[source.strip()] = target.strip()
    return mapping


def mapped_model(model: str, mapping: dict[str, str]) -> str | None:
    """The target model for a source model: an exact key, else the longest key the name extends with a
    dash (`gpt-4o-mini` covers the dated snapshot `gpt-4o-mini-2024-07-18`)."""
    if model in mapping:
        return mapping[model]
    keys = [key for key in mapping if model.startswith(key + "-")]
    return mapping[max(keys, key=len)] if keys else None


def plan(source: OpenAI, target: OpenAI, state: MigrationState, mapping: dict[str, str]) -> Plan:
    workdir = tempfile.TemporaryDirectory(prefix="openft-migrate-")
    on_target = {f.id for f in target.files.list(purpose="fine-tune")}
    files = [_file_step(source, f, state, on_target, Path(workdir.name)) for f in _source_files(source)]
    _dedupe_copies(files)
    usable = {step.source_id: step.target_id or "" for step in files if step.action != "skip"}
    jobs = [_job_step(job, state, mapping, usable) for job in reversed(list(source.fine_tuning.jobs.list()))]
    return Plan(files, jobs, workdir)


def apply(plan: Plan, target: OpenAI, state: MigrationState, state_path: Path) -> None:
    """Copy what the plan says to copy; a failing step is recorded on the step and the others go on."""
    import openai

    for step in plan.files:
        if step.action == "copy":
            assert step.content_path is not None and step.sha256 is not None
            try:
                with step.content_path.open("rb") as content:
                    created = target.files.create(file=(step.filename, content), purpose="fine-tune")
            except openai.APIStatusError as exc:
                step.action, step.note = "skip", f"the target refused it: {_message(exc)}"
                continue
            step.target_id = created.id
            state.contents[step.sha256] = created.id
        if step.action in ("copy", "reuse") and step.target_id is None:
            step.target_id = state.contents.get(step.sha256 or "")
        if step.action in ("copy", "reuse") and step.target_id:
            state.files[step.source_id] = step.target_id
            state.save(state_path)
    for job in plan.jobs:
        if job.action != "copy":
            continue
        job.request = _with_target_files(job.request, state.files)
        if not job.request:
            job.action, job.note = "skip", "one of its files was not copied"
            continue
        try:
            made = target.fine_tuning.jobs.create(**job.request)
        except openai.APIStatusError as exc:
            job.action, job.note = "skip", f"the target refused it: {_message(exc)}"
            continue
        job.target_id = made.id
        state.jobs[job.source_id] = made.id
        state.save(state_path)


def _source_files(source: OpenAI) -> Iterator[FileObject]:
    # Oldest first, so that copies keep the source's order.
    return iter(sorted(source.files.list(purpose="fine-tune"), key=lambda f: (f.created_at, f.id)))


def _file_step(
    source: OpenAI, file: FileObject, state: MigrationState, on_target: set[str], workdir: Path
) -> FileStep:
    done = state.files.get(file.id)
    if done is not None and done in on_target:
        return FileStep(file.id, file.filename, "done", done)
    path = workdir / file.id
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for chunk in source.files.content(file.id).iter_bytes():
            digest.update(chunk)
            out.write(chunk)
    sha256 = digest.hexdigest()
    same = state.contents.get(sha256)
    if same is not None and same in on_target:
        path.unlink()
        return FileStep(file.id, file.filename, "reuse", same, sha256, f"same content as {same}")
    return FileStep(file.id, file.filename, "copy", None, sha256, "", path)


def _dedupe_copies(files: list[FileStep]) -> None:
    """Two source files with the same bytes are uploaded once."""
    first: dict[str, FileStep] = {}
    for step in files:
        if step.action != "copy" or step.sha256 is None:
            continue
        if step.sha256 in first:
            step.action, step.note = "reuse", f"same content as {first[step.sha256].source_id}"
            continue
        first[step.sha256] = step


def _job_step(
    job: FineTuningJob, state: MigrationState, mapping: dict[str, str], files: dict[str, str]
) -> JobStep:
    if job.id in state.jobs:
        return JobStep(job.id, job.model, "done", target_id=state.jobs[job.id])
    target_model = mapped_model(job.model, mapping)
    if target_model is None:
        return JobStep(job.id, job.model, "skip", note=f"no --model-map entry for {job.model}")
    for name in (job.training_file, job.validation_file):
        if name and name not in files:
            return JobStep(
                job.id, job.model, "skip", target_model, note=f"its file {name} is not on the source"
            )
    method_type, hyperparameters, extra = _method(job)
    kept, dropped = checked_hyperparameters(method_type, hyperparameters)
    method: dict[str, Any] = {"type": method_type, method_type: {**extra, "hyperparameters": kept}}
    request: dict[str, Any] = {
        "model": target_model,
        "training_file": job.training_file,
        "method": method,
        "seed": job.seed,
    }
    if job.validation_file:
        request["validation_file"] = job.validation_file
    suffix = _suffix(job)
    if suffix:
        request["suffix"] = suffix
    if job.metadata:
        request["metadata"] = dict(job.metadata)
    return JobStep(job.id, job.model, "copy", target_model, request, dropped=dropped)


def checked_hyperparameters(method: str, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The hyperparameters openft's `method` accepts, and why it refuses each of the others."""
    kept = {k: v for k, v in values.items() if v is not None}
    dropped: dict[str, str] = {}
    while kept:
        try:
            parse_hyperparameters(method, kept)  # type: ignore[arg-type]
            break
        except HyperparameterError as exc:
            name = exc.field if exc.field in kept else None
            if name is None:  # a refusal of the set as a whole: keep none of them
                dropped |= dict.fromkeys(kept, str(exc))
                return {}, dropped
            dropped[name] = str(exc)
            del kept[name]
    return kept, dropped


def _method(job: FineTuningJob) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The job's method type, its hyperparameters, and the method's other fields (a grader)."""
    method = job.method
    method_type = method.type if method is not None and method.type in JOB_METHODS else "supervised"
    details = getattr(method, method_type, None) if method is not None else None
    if details is None:
        top = job.hyperparameters.model_dump() if job.hyperparameters is not None else {}
        return method_type, top, {}
    dumped = details.model_dump(exclude_none=True)
    hyperparameters = dumped.pop("hyperparameters", {}) or {}
    return method_type, hyperparameters, dumped


def _suffix(job: FineTuningJob) -> str | None:
    given = getattr(job, "user_provided_suffix", None)
    if given:
        return str(given)
    # ft:{base}:{org}:{suffix}:{id}: the suffix segment of the model the job made.
    parts = (job.fine_tuned_model or "").split(":")
    return parts[3] if len(parts) >= 5 and parts[3] else None


def _with_target_files(request: dict[str, Any], files: dict[str, str]) -> dict[str, Any]:
    """The request with the source's file ids replaced by the target's; empty when one is missing."""
    updated = dict(request)
    for key in ("training_file", "validation_file"):
        if key in updated:
            if updated[key] not in files:
                return {}
            updated[key] = files[updated[key]]
    return updated


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return str(exc)
