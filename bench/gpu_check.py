"""openft on a CUDA GPU, checked and measured in one run (run it through bench/gpu_check.sh).

    bash bench/gpu_check.sh                      # on the GPU machine: every stage, well under 8 minutes
    bash bench/gpu_check.sh --dry-run            # anywhere: is everything the GPU run needs in place?
    bash bench/gpu_check.sh --dry-run --cpu-smoke  # ... and run the training and generation stages on
                                                 # the CPU with a tiny model for a few steps (CI does)

Stages, each in a process of its own with a time budget; a stage that fails or runs out of time is
recorded with its error and the run goes on:
  preflight  the dry run's checks (bench/gpu_preflight.py)
  env        versions, the GPU's name, its data-sheet bf16 peak and a measured bf16 matrix rate
  build      SmolLM2-135M's architecture and a ~1B model of the same family, random weights, in code
  train      openft's recipe and TRL's SFTTrainer on the same tokens and settings, LoRA and full, bf16:
             tokens/s, achieved TFLOP/s and its share of the peak, peak GPU memory, openft / TRL ratio
  inference  openft's engine: single-stream decode tokens/s, aggregate tokens/s at 1/8/32 concurrent
             requests over 0 and 4 adapters
  tests      the training and inference test modules, with CUDA as the device (GPU run only)
Every figure goes to one JSON file, $OUT/gpu_check.json (rewritten after every stage, so a run cut
short keeps what it measured), beside the test reports. The whole run keeps to --total-s (440 s);
--stages picks some of train, inference and tests, for a second try at one of them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

from bench import gpu_preflight
from bench.gpu_models import SHAPES, is_built, make_examples, write_examples

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_VERSION = 1


# ---- what each mode runs ----------------------------------------------------------------------------

# In order of importance (full fine-tuning of the 1B model is the headline figure): what the training
# stage's budget leaves out comes last.
GPU_TRAIN = {
    "llama-1b": {"batch": 8, "min_tokens": 1024, "max_tokens": 2048, "steps": 15},
    "smollm2-135m": {"batch": 16, "min_tokens": 1024, "max_tokens": 2048, "steps": 20},
}
SMOKE_TRAIN = {"tiny": {"batch": 2, "min_tokens": 48, "max_tokens": 96, "steps": 3}}
GPU_INFERENCE = {"levels": [1, 8, 32], "n_adapters": 4, "max_tokens": 128}
SMOKE_INFERENCE = {"levels": [1, 2], "n_adapters": 2, "max_tokens": 6}
LEARNING_RATE = {"lora": 1e-4, "full": 1e-5}
TEST_FOLDERS = ("tests/train", "tests/inference")
PYTEST_TESTS_FAILED = 1  # pytest's exit status when tests ran and some failed
STAGES = ("train", "inference", "tests")  # preflight, env and (for train or inference) build always run


class Plan:
    """Budgets in seconds: `train_budget_s` is the stepping time of one training run (the child's own
    stop); the timeouts bound whole processes, imports and model loading included; the training stage
    starts no run after `train_stage_s`, so that generation and the tests keep their share."""

    def __init__(self, smoke: bool, total_s: float) -> None:
        self.smoke = smoke
        self.train = SMOKE_TRAIN if smoke else GPU_TRAIN
        self.inference = SMOKE_INFERENCE if smoke else GPU_INFERENCE
        self.warmup_steps = 1 if smoke else 3
        self.train_budget_s = 30.0 if smoke else 20.0
        self.train_timeout_s = 120.0 if smoke else 100.0
        self.train_stage_s = 300.0 if smoke else 210.0
        self.inference_budget_s = 30.0 if smoke else 70.0
        self.inference_timeout_s = 120.0 if smoke else 150.0
        self.tests_timeout_s = 150.0
        self.deadline = time.monotonic() + total_s

    def left_s(self) -> float:
        return self.deadline - time.monotonic()


# ---- the report -------------------------------------------------------------------------------------


class Report:
    """The JSON file, rewritten whole (through a temporary file) after every change."""

    def __init__(self, path: Path, mode: str) -> None:
        self.path = path
        self.started = time.monotonic()
        self.data: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "mode": mode,
            "started_at": int(time.time()),
            "errors": [],
        }
        self.save()

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.save()

    def error(self, stage: str, message: str) -> None:
        print(f"!! {stage}: {message}", flush=True)
        self.data["errors"].append({"stage": stage, "error": message})
        self.save()

    def save(self) -> None:
        self.data["elapsed_s"] = round(time.monotonic() - self.started, 1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False, suffix=".tmp") as f:
            json.dump(self.data, f, indent=2)
            f.write("\n")
        os.replace(f.name, self.path)


# ---- processes with a deadline ----------------------------------------------------------------------


def run_child(args: list[str], timeout_s: float, env: dict[str, str] | None = None) -> str | None:
    """Run a command from the repository root, its output going to ours; None if it succeeded, else why.

    At the timeout it first gets SIGINT (pytest then still writes its report), then is killed. It stays
    in our process session: if this run is killed from outside, no child lives on holding the GPU."""
    if timeout_s <= 5:
        return "skipped: the run's total time budget is spent"
    print(f"\n$ {' '.join(args)}  (up to {timeout_s:.0f} s)", flush=True)
    process = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})})
    try:
        code = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return f"timed out after {timeout_s:.0f} s"
    return None if code == 0 else child_failed(code)


def child_failed(code: int) -> str:
    return f"exit status {code} (see the log above)"


def child_json(module: str, job: Any, timeout_s: float, work: Path) -> tuple[Any, str | None]:
    """Run `python -m module [JOB] RESULT` and read RESULT back: (result or None, error or None)."""
    work.mkdir(parents=True, exist_ok=True)
    handle, result_name = tempfile.mkstemp(suffix=".json", dir=work)
    os.close(handle)
    result_path = Path(result_name)
    args = [sys.executable, "-m", module]
    if job is not None:
        job_path = result_path.with_suffix(".job.json")
        job_path.write_text(json.dumps(job, indent=2))
        args.append(str(job_path))
    error = run_child([*args, str(result_path)], timeout_s)
    text = result_path.read_text() if result_path.is_file() else ""
    return (json.loads(text) if text.strip() else None), error


# ---- stages -----------------------------------------------------------------------------------------


def stage_preflight(report: Report) -> list[gpu_preflight.Check]:
    checks = gpu_preflight.preflight(ROOT)
    report.set("preflight", gpu_preflight.summary(checks))
    print(gpu_preflight.machine_versions_note())
    for check in checks:
        if check.status != "ok":
            print(f"  {check.status:8} {check.name}  {check.detail}")
    counts = report.data["preflight"]["counts"]
    print("preflight: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())), flush=True)
    return checks


def stage_env(report: Report, plan: Plan, work: Path) -> dict[str, Any]:
    info, error = child_json("bench.gpu_env", None, min(90.0, plan.left_s()), work)
    if error:
        report.error("env", error)
    report.set("env", info or {})
    return info or {}


def stage_build(report: Report, plan: Plan, work: Path) -> dict[str, Path]:
    names = list(plan.train)
    error = run_child(
        [sys.executable, "-m", "bench.gpu_models", str(work / "models"), *names], min(180.0, plan.left_s())
    )
    if error:
        report.error("build", error)
    built = {name: work / "models" / name for name in names if is_built(work / "models" / name)}
    report.set(
        "models",
        {name: {"parameters": SHAPES[name].n_parameters(), "shape": vars(SHAPES[name])} for name in built},
    )
    return built


def train_jobs(plan: Plan, models: dict[str, Path], work: Path) -> list[dict[str, Any]]:
    jobs = []
    for name, settings in plan.train.items():
        if name not in models:
            continue
        n_examples = settings["batch"] * (settings["steps"] + 1)  # a step to spare: the run stops itself
        examples = make_examples(n_examples, settings["min_tokens"], settings["max_tokens"], seed=0)
        train_file = write_examples(work / "data" / f"{name}.jsonl", examples)
        for method in ("full", "lora"):
            for side in ("openft", "trl"):
                jobs.append(
                    {
                        "side": side,
                        "model": name,
                        "model_dir": str(models[name]),
                        "train_file": str(train_file),
                        "work_dir": str(work / "runs" / f"{name}-{method}-{side}"),
                        "method": method,
                        "lora_rank": 16,
                        "learning_rate": LEARNING_RATE[method],
                        "max_seq_length": SHAPES[name].context,
                        "warmup_steps": plan.warmup_steps,
                        "budget_s": plan.train_budget_s,
                        **settings,
                    }
                )
    return jobs


def stage_train(report: Report, plan: Plan, models: dict[str, Path], env: dict[str, Any], work: Path) -> None:
    """On a GPU each run gets a process of its own (its own peak memory, a crash costs one run); the CPU
    smoke run puts them all in one, to spare the imports."""
    has_trl = all(importlib.util.find_spec(name) is not None for name in ("trl", "datasets"))
    runs: list[dict[str, Any]] = []
    report.set("train", {"runs": runs, "trl_installed": has_trl})
    jobs = []
    for job in train_jobs(plan, models, work):
        if job["side"] == "trl" and not has_trl:
            runs.append({**_key(job), "skipped": "TRL is not installed (bench/gpu_wheels.sh)"})
        else:
            jobs.append(job)
    groups = [jobs] if plan.smoke else [[job] for job in jobs]
    stage_deadline = time.monotonic() + plan.train_stage_s
    while groups:
        group = groups.pop(0)
        if time.monotonic() > stage_deadline:
            runs.extend(
                {**_key(job), "skipped": "the training stage's time budget is spent"} for job in group
            )
            continue
        timeout_s = min(plan.train_timeout_s * len(group), plan.left_s() - 30)
        results, error = child_json("bench.gpu_train", group, timeout_s, work)
        results = results or []
        for i, job in enumerate(group):
            result = results[i] if i < len(results) else {"error": error or "no result"}
            runs.append({**_key(job), **result})
            _add_peak_shares(runs[-1], env)
            if "error" in result:
                report.error(f"train {job['side']} {job['model']} {job['method']}", result["error"])
                if job["side"] == "trl" and job.get("trl_padding_free", True) and not plan.smoke:
                    # Padding-free without flash attention builds a mask over the whole flattened
                    # batch; should that fail, TRL's padded batches still give a figure to compare.
                    groups.insert(0, [{**job, "trl_padding_free": False}])
        report.set("train", {"runs": runs, "trl_installed": has_trl, "ratios": ratios(runs)})


def _key(job: dict[str, Any]) -> dict[str, Any]:
    return {"side": job["side"], "model": job["model"], "method": job["method"]}


def _add_peak_shares(run: dict[str, Any], env: dict[str, Any]) -> None:
    achieved = run.get("achieved_tflops")
    if not achieved:
        return
    if env.get("bf16_peak_tflops"):
        run["share_of_bf16_peak"] = round(achieved / env["bf16_peak_tflops"], 4)
    if env.get("bf16_matmul_tflops_measured"):
        run["share_of_measured_matmul"] = round(achieved / env["bf16_matmul_tflops_measured"], 4)


def ratios(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """openft over TRL for each model and method that both sides measured."""
    measured = {(r["side"], r["model"], r["method"]): r for r in runs if r.get("tokens_per_s")}
    out = []
    for (side, model, method), ours in measured.items():
        theirs = measured.get(("trl", model, method))
        if side != "openft" or theirs is None:
            continue
        row = {
            "model": model,
            "method": method,
            "trl_padding_free": theirs.get("trl_padding_free"),
            "tokens_per_s_ratio": round(ours["tokens_per_s"] / theirs["tokens_per_s"], 3),
        }
        if ours.get("peak_memory_gib") and theirs.get("peak_memory_gib"):
            row["peak_memory_ratio"] = round(ours["peak_memory_gib"] / theirs["peak_memory_gib"], 3)
        out.append(row)
    return out


def stage_inference(report: Report, plan: Plan, models: dict[str, Path], work: Path) -> None:
    job = {
        **plan.inference,
        "lora_rank": 16,
        "budget_s": plan.inference_budget_s,
        "work_dir": str(work / "inference"),
        "models": [
            {"model": name, "model_dir": str(path), "context": SHAPES[name].context}
            for name, path in models.items()
        ],
    }
    result, error = child_json(
        "bench.gpu_generate", job, min(plan.inference_timeout_s, plan.left_s() - 20), work
    )
    if error:
        report.error("inference", error)
    report.set("inference", result or {"error": error})


def stage_tests(report: Report, plan: Plan, out: Path, folders: tuple[str, ...] = TEST_FOLDERS) -> None:
    """The training and inference test modules with CUDA as the device; each gets an equal share of what
    is left. Failing tests are listed under `tests`; only a module that could not run is an error."""
    results: dict[str, Any] = {}
    report.set("tests", results)
    timeout_arg = ["--timeout=120"] if importlib.util.find_spec("pytest_timeout") else []
    for i, folder in enumerate(folders):
        xml = out / f"tests_{Path(folder).name}.xml"
        share = (plan.left_s() - 10) / (len(folders) - i)
        args = [sys.executable, "-m", "pytest", folder, "-q", "-p", "no:cacheprovider", "-rfE"]
        args += [f"--junitxml={xml}", *timeout_arg]
        error = run_child(args, min(plan.tests_timeout_s, share), {"OPENFT_INFERENCE_DEVICE": "cuda"})
        results[folder] = junit_summary(xml) | ({"error": error} if error else {})
        if error and error != child_failed(PYTEST_TESTS_FAILED):  # that one the summary shows
            report.error(f"tests {folder}", error)
        report.set("tests", results)


def junit_summary(path: Path) -> dict[str, Any]:
    """Counts and the failing tests (with the first line of their message) from a JUnit XML report."""
    if not path.is_file():
        return {"report": None}
    root = ElementTree.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return {"report": path.name}
    counts = {key: int(suite.get(key, "0")) for key in ("tests", "failures", "errors", "skipped")}
    failed = []
    for case in suite.iter("testcase"):
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        if problem is not None:
            message = (problem.get("message") or "").strip().splitlines()
            failed.append(
                f"{case.get('classname')}::{case.get('name')}: {message[0][:300] if message else ''}"
            )
    return {"report": path.name, **counts, "seconds": float(suite.get("time", "0")), "failed": failed}


# ---- the run ----------------------------------------------------------------------------------------


def print_summary(report: Report) -> None:
    data = report.data
    env = data.get("env") or {}
    print(
        f"\n== {data['mode']} on {env.get('device', '?')} (bf16 peak {env.get('bf16_peak_tflops')} TFLOP/s, "
        f"measured matmul {env.get('bf16_matmul_tflops_measured')} TFLOP/s)"
    )
    for run in (data.get("train") or {}).get("runs", []):
        name = f"{run['side']:6} {run['model']:13} {run['method']:4}"
        if run.get("tokens_per_s"):
            share = 100 * run.get("share_of_bf16_peak", 0)
            memory = run.get("peak_memory_gib", run.get("peak_rss_gib"))
            print(
                f"  {name} {run['tokens_per_s']:>12,.0f} tokens/s  {run.get('achieved_tflops', 0):8.2f} "
                f"TFLOP/s ({share:4.1f} % of peak)  peak memory {memory} GiB"
            )
        else:
            print(f"  {name} {run.get('skipped') or run.get('error')}")
    for row in (data.get("train") or {}).get("ratios", []):
        print(f"  openft / TRL {row['model']} {row['method']}: {row['tokens_per_s_ratio']:.2f}x tokens/s")
    for model in (data.get("inference") or {}).get("models", []):
        single = model.get("single_stream_decode_tokens_per_s")
        print(f"  generate {model['model']}: single-stream decode {single} tokens/s")
        for r in model.get("rounds", []):
            if "aggregate_tokens_per_s" in r:
                where = f"{r['concurrency']:>3} requests, {r['n_adapters']} adapters"
                print(f"    {where}: {r['aggregate_tokens_per_s']:>10,.1f} tokens/s")
    for folder, result in (data.get("tests") or {}).items():
        print(f"  {folder}: {result}")
    print(f"errors: {len(data['errors'])}; figures in {report.path}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/gpu_check.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="check what the GPU run needs; train nothing")
    parser.add_argument(
        "--cpu-smoke", action="store_true", help="train and generate with a tiny model on the CPU"
    )
    parser.add_argument("--strict", action="store_true", help="with --dry-run: missing wheels fail it too")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "openft-gpu-check-work",
        help="models, data and checkpoints (never under $OUT: that folder travels back)",
    )
    parser.add_argument("--total-s", type=float, default=440.0, help="time budget of the whole run")
    parser.add_argument(
        "--stages",
        default=",".join(STAGES),
        help="which of train, inference, tests to run (comma-separated; the tests never in --cpu-smoke)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.stages.split(",")) - set(STAGES)
    if unknown:
        parser.error(f"--stages: unknown {', '.join(sorted(unknown))}; choose from {', '.join(STAGES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = "cpu-smoke" if args.cpu_smoke else "dry-run" if args.dry_run else "gpu"
    out = Path(os.environ.get("OUT") or "/tmp/openft-gpu-check")  # the device machine sets OUT
    report = Report(out / "gpu_check.json", mode)
    checks = stage_preflight(report)
    failed = [c for c in checks if c.status == "fail" or (args.strict and c.status == "missing")]
    if failed:
        report.error(
            "preflight",
            f"{len(failed)} check(s) failed: " + "; ".join(f"{c.name}: {c.detail}" for c in failed),
        )
    if mode == "dry-run":
        return 1 if failed else 0
    stages = set(args.stages.split(",")) - ({"tests"} if args.cpu_smoke else set())
    plan = Plan(smoke=args.cpu_smoke, total_s=args.total_s)
    env = stage_env(report, plan, args.work)
    if mode == "gpu" and not env.get("cuda_available"):
        report.error("env", "no CUDA device: this run is for a GPU machine (--cpu-smoke runs on a CPU)")
        return 1
    models = stage_build(report, plan, args.work) if stages & {"train", "inference"} else {}
    if "train" in stages:
        stage_train(report, plan, models, env, args.work)
    if "inference" in stages:
        stage_inference(report, plan, models, args.work)
    if "tests" in stages:
        stage_tests(report, plan, out)
    print_summary(report)
    return 1 if report.data["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
