"""bench/gpu_check.sh, the prepared GPU run, as far as a CPU can take it.

CI has no GPU and no TRL, and downloads nothing: the dry run there must pass with the wheels reported
missing, the wheel checks are exercised on a folder of fake wheels, and the training and generation
stages run for real on the CPU with a tiny model (--cpu-smoke), through the same processes and code
paths as on the GPU.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bench import gpu_check, gpu_machine, gpu_preflight
from bench.gpu_models import SHAPES

ROOT = Path(__file__).resolve().parents[2]


def run_script(out: Path, *args: str) -> tuple[int, dict]:
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu_check.sh"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert (out / "gpu_check.log").is_file(), done.stdout + done.stderr
    return done.returncode, json.loads((out / "gpu_check.json").read_text())


def fake_wheel(folder: Path, name: str, version: str, requires: list[str], tag: str = "py3-none-any") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name.replace('-', '_')}-{version}-{tag}.whl"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name.replace('-', '_')}-{version}.dist-info/METADATA", metadata)
    return path


def test_dry_run_passes_and_writes_its_checks(tmp_path: Path) -> None:
    code, report = run_script(tmp_path / "out", "--dry-run")
    assert code == 0, report["errors"]
    assert report["mode"] == "dry-run"
    statuses = {check["status"] for check in report["preflight"]["checks"]}
    assert "fail" not in statuses
    names = {check["name"] for check in report["preflight"]["checks"]}
    # openft's own dependencies are checked against the machine's record and the pinned wheels.
    assert "openft needs transformers>=5.0" in names
    assert any(name.startswith("wheel trl==") for name in names)  # ok where downloaded, missing in CI
    assert "size of what travels" in names


def test_wheel_checks_catch_missing_duplicate_foreign_and_stray_wheels(tmp_path: Path) -> None:
    wheels = tmp_path / "whl"
    fake_wheel(wheels, "trl", "1.16.0", ["transformers>=4.56.2"])
    fake_wheel(wheels, "openai", "3.57.0", [])
    fake_wheel(wheels, "openai", "3.56.0", [])
    fake_wheel(wheels, "jiter", "0.19.0", [], tag="cp312-cp312-macosx_11_0_arm64")
    fake_wheel(wheels, "pydantic", "2.0.0", [])
    fake_wheel(wheels, "leftover", "1.0", [])
    pins = {"trl": "1.16.0", "openai": "3.57.0", "jiter": "0.19.0", "pydantic": "2.14.4", "uvicorn": "0.55.0"}

    checks, found = gpu_preflight.check_wheels(wheels, pins)

    by_name = {check.name: check for check in checks}
    assert by_name["wheel trl==1.16.0"].status == "ok"
    assert by_name["wheel openai"].status == "fail"  # two versions stop the install
    assert by_name["wheel jiter"].status == "fail"  # built for another platform
    assert by_name["wheel pydantic==2.14.4"].status == "fail"  # the wrong version
    assert by_name["wheel uvicorn==0.55.0"].status == "missing"
    assert by_name["wheel leftover"].status == "fail"  # not pinned
    assert set(found) == {"trl", "jiter", "pydantic", "leftover"}


def test_requirements_are_checked_against_the_machine_and_the_wheels() -> None:
    pins = {"pydantic": "2.14.4"}
    check = gpu_preflight.check_requirement
    assert check("transformers>=4.56.2", pins, "trl").status == "ok"  # 5.17.0 on record
    failed = check("transformers>=99", pins, "x")
    assert failed.status == "fail" and gpu_machine.VERSIONS["transformers"] in failed.detail
    assert check("pydantic<2", pins, "x").status == "fail"  # the pinned wheel is too new
    assert check("pandas>=2", pins, "x").status == "assumed"  # there, version not recorded
    assert check("not-a-package-anywhere", pins, "x").status == "fail"
    assert check("colorama; platform_system == 'Windows'", pins, "x") is None


def test_a_wheel_that_needs_a_newer_transformers_fails_the_dry_run(tmp_path: Path) -> None:
    wheels = tmp_path / "whl"
    pins = gpu_preflight.pinned(ROOT / "bench" / "gpu_wheels.txt")
    for name, version in pins.items():
        needs = ["transformers>=6.0"] if name == "trl" else []
        fake_wheel(wheels, name, version, needs)

    checks = gpu_preflight.preflight(ROOT, wheels)

    problems = [c for c in checks if c.status == "fail"]
    assert [c.name for c in problems] == ["trl needs transformers>=6.0"]
    assert all(c.status == "ok" for c in checks if c.name.startswith("wheel "))


def test_card_peaks_come_from_the_device_name() -> None:
    assert gpu_machine.bf16_peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert gpu_machine.bf16_peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert gpu_machine.bf16_peak_tflops("NVIDIA H200") == 989.0
    assert gpu_machine.bf16_peak_tflops("NVIDIA L40S") == 362.0
    assert gpu_machine.bf16_peak_tflops("Some Future GPU") is None


def test_model_shapes_count_the_parameters_transformers_builds() -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    for name in ("smollm2-135m", "tiny"):
        shape = SHAPES[name]
        config = LlamaConfig(
            vocab_size=shape.vocab,
            hidden_size=shape.hidden,
            intermediate_size=shape.mlp,
            num_hidden_layers=shape.layers,
            num_attention_heads=shape.heads,
            num_key_value_heads=shape.kv_heads,
            tie_word_embeddings=True,
        )
        with torch.device("meta"):
            model = LlamaForCausalLM(config)
        assert sum(p.numel() for p in model.parameters()) == shape.n_parameters()
    assert SHAPES["smollm2-135m"].n_parameters() == 134_515_008  # SmolLM2-135M's published size
    lora = get_peft_model(model, LoraConfig(r=16, target_modules="all-linear"))
    trained = sum(p.numel() for p in lora.parameters() if p.requires_grad)
    assert trained == SHAPES["tiny"].n_lora_parameters(16)


def test_junit_summary_lists_the_failures(tmp_path: Path) -> None:
    xml = tmp_path / "report.xml"
    xml.write_text(
        '<testsuites><testsuite tests="3" failures="1" errors="0" skipped="1" time="2.5">'
        '<testcase classname="tests.train.test_a" name="test_ok"/>'
        '<testcase classname="tests.train.test_a" name="test_bad">'
        '<failure message="assert 1 == 2&#10;more">trace</failure></testcase>'
        '<testcase classname="tests.train.test_a" name="test_skip"><skipped/></testcase>'
        "</testsuite></testsuites>"
    )
    summary = gpu_check.junit_summary(xml)
    assert (summary["tests"], summary["failures"], summary["skipped"]) == (3, 1, 1)
    assert summary["failed"] == ["tests.train.test_a::test_bad: assert 1 == 2"]
    assert gpu_check.junit_summary(tmp_path / "absent.xml") == {"report": None}


@pytest.mark.slow
def test_cpu_smoke_trains_and_generates_through_the_gpu_code_paths(tmp_path: Path) -> None:
    code, report = run_script(tmp_path / "out", "--dry-run", "--cpu-smoke", "--work", str(tmp_path / "work"))

    assert code == 0, report["errors"]
    assert report["mode"] == "cpu-smoke" and report["errors"] == []
    assert report["env"]["device"] == "cpu" and report["env"]["versions"]["torch"]
    runs = {(r["side"], r["method"]): r for r in report["train"]["runs"]}
    for method in ("lora", "full"):
        run = runs[("openft", method)]
        assert run["status"] == "cancelled"  # stopped by the reporter after its steps: no checkpoint
        assert run["steps_run"] == 3 and run["steps_timed"] == 2 and run["tokens_timed"] > 0
        assert run["tokens_per_s"] > 0 and run["achieved_tflops"] >= 0
        assert math.isfinite(run["first_loss"]) and math.isfinite(run["last_loss"])
        assert not (
            tmp_path / "work" / "runs" / f"tiny-{method}-openft" / "openft-out" / "checkpoints"
        ).exists()
    assert runs[("openft", "lora")]["n_trained_parameters"] < runs[("openft", "lora")]["n_parameters"]
    assert runs[("openft", "full")]["flops_per_token"] == 6 * SHAPES["tiny"].n_parameters()
    trl = runs[("trl", "lora")]
    assert "skipped" in trl if not report["train"]["trl_installed"] else trl["tokens_per_s"] > 0
    (model,) = report["inference"]["models"]
    rounds = {(r["n_adapters"], r["concurrency"]): r for r in model["rounds"]}
    assert set(rounds) == {(0, 1), (0, 2), (2, 1), (2, 2)}
    for (_, concurrency), measured in rounds.items():
        # End tokens are forbidden: every request makes exactly max_tokens.
        assert measured["n_tokens"] == concurrency * report["inference"]["max_tokens"]
        assert measured["aggregate_tokens_per_s"] > 0
    assert model["single_stream_decode_tokens_per_s"] > 0


def test_a_failing_or_overrunning_stage_is_reported_not_raised() -> None:
    exit_3 = [sys.executable, "-c", "import sys; sys.exit(3)"]
    assert gpu_check.run_child(exit_3, 60) == "exit status 3 (see the log above)"
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    assert gpu_check.run_child(sleeper, 6) == "timed out after 6 s"
    assert gpu_check.run_child(sleeper, 5).startswith("skipped")  # no time left: not even started
    assert gpu_check.run_child([sys.executable, "-c", "pass"], 60) is None


def test_the_tests_stage_lists_failures_with_cuda_as_the_device(tmp_path: Path) -> None:
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "test_device.py").write_text(
        "import os\n"
        "def test_sees_cuda():\n"
        "    assert os.environ['OPENFT_INFERENCE_DEVICE'] == 'cuda'\n"
        "def test_breaks():\n"
        "    assert 1 == 2, 'broken on purpose'\n"
    )
    out = tmp_path / "out"
    report = gpu_check.Report(out / "gpu_check.json", "gpu")

    gpu_check.stage_tests(report, gpu_check.Plan(smoke=False, total_s=120), out, (str(folder),))

    saved = json.loads((out / "gpu_check.json").read_text())
    result = saved["tests"][str(folder)]
    assert (result["tests"], result["failures"]) == (2, 1)
    # The test's class name is relative to the child's rootdir, which depends on where the folder lies.
    [failed] = result["failed"]
    assert failed.endswith("test_device::test_breaks: AssertionError: broken on purpose")
    assert saved["errors"] == []  # failing tests are the stage's result, not a stage error
