"""A CPU run's threads follow the cores other processes leave free (openft.train.core_share)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from openft.train import core_share
from openft.train.core_share import MIN_INTERVAL_S, CoreShare, read_busy_seconds
from openft.train.environment import TRAINING_SPIN_COUNT, set_model_process_environment
from openft.train.reporting import MemoryReporter
from openft.train.sft import train_sft
from openft.train.spec import SupervisedHyperparameters as Hyperparameters

TICK = os.sysconf("SC_CLK_TCK")


def _stat(busy_ticks: dict[int, int]) -> str:
    """/proc/stat text where core N has been busy busy_ticks[N] ticks (half user, half system), with
    idle, iowait and guest time that must not count."""
    lines = ["cpu  1 2 3 4 5 6 7 8 9 10"]
    for core, ticks in busy_ticks.items():
        user, system = ticks // 2, ticks - ticks // 2
        lines.append(f"cpu{core} {user} 0 {system} 999 50 0 0 0 {user} 0")
    return "\n".join([*lines, "intr 12345", "ctxt 678"]) + "\n"


def test_busy_time_counts_the_asked_cores_and_no_idle_iowait_or_guest() -> None:
    text = _stat({0: 200, 1: 100, 2: 5000})
    assert read_busy_seconds([0, 1], text) == pytest.approx(300 / TICK)
    steal = "cpu0 10 0 10 500 500 1 2 3 70 0\n"  # irq, softirq and steal are busy: the core was not ours
    assert read_busy_seconds([0], steal) == pytest.approx(26 / TICK)


class FakeMachine:
    """A clock, /proc/stat and this process's CPU time that the test advances."""

    def __init__(self, n_cores: int) -> None:
        self.now = 100.0
        self.busy = dict.fromkeys(range(n_cores), 0)
        self.own_s = 0.0
        self.threads_set: list[int] = []

    def advance(self, seconds: float, *, own_cores: float, other_cores: float) -> None:
        """`seconds` pass with this process and other processes keeping that many cores busy."""
        self.now += seconds
        self.own_s += own_cores * seconds
        total_ticks = round((own_cores + other_cores) * seconds * TICK)
        for core in self.busy:  # spread evenly: only the sum over our cores matters
            self.busy[core] += total_ticks // len(self.busy)

    def share(self, full_threads: int) -> CoreShare:
        return CoreShare(
            sorted(self.busy),
            full_threads,
            read_stat=lambda: _stat(self.busy),
            own_cpu_seconds=lambda: self.own_s,
            clock=lambda: self.now,
            set_threads=self.threads_set.append,
        )


def test_threads_give_way_to_other_processes_and_come_back() -> None:
    machine = FakeMachine(n_cores=2)
    share = machine.share(full_threads=2)

    machine.advance(3.0, own_cores=1.8, other_cores=0.1)  # an API server answering now and then
    assert share.rebalance() is None and share.threads == 2

    machine.advance(3.0, own_cores=1.2, other_cores=0.8)  # an inference engine decoding beside us
    assert share.rebalance() == 1

    machine.advance(3.0, own_cores=1.0, other_cores=1.0)
    assert share.rebalance() is None and share.threads == 1

    machine.advance(3.0, own_cores=1.0, other_cores=0.0)  # it stopped
    assert share.rebalance() == 2
    assert machine.threads_set == [1, 2]

    machine.advance(3.0, own_cores=1.0, other_cores=1.0)
    assert share.rebalance() == 1
    share.restore()  # the run ended: the process gets its threads back
    assert share.threads == 2
    assert machine.threads_set == [1, 2, 1, 2]


def test_never_below_one_thread_and_never_above_the_full_count() -> None:
    machine = FakeMachine(n_cores=8)
    share = machine.share(full_threads=4)  # e.g. one thread per physical core of 8 logical ones

    machine.advance(2.0, own_cores=1.0, other_cores=7.0)
    assert share.rebalance() == 1
    machine.advance(2.0, own_cores=1.0, other_cores=2.0)  # 6 cores free: still at most the full 4
    assert share.rebalance() == 4
    assert machine.threads_set == [1, 4]


def test_short_intervals_are_not_measured() -> None:
    machine = FakeMachine(n_cores=2)
    share = machine.share(full_threads=2)
    machine.advance(MIN_INTERVAL_S / 2, own_cores=0.0, other_cores=2.0)
    assert share.rebalance() is None  # too short to tell: 10 ms ticks
    machine.advance(MIN_INTERVAL_S, own_cores=0.0, other_cores=2.0)
    assert share.rebalance() == 1  # measured over both intervals together


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to share")
def test_a_busy_process_on_the_real_machine_takes_a_thread_away() -> None:
    cores = sorted(os.sched_getaffinity(0))
    threads_set: list[int] = []
    share = CoreShare(cores, len(cores), set_threads=threads_set.append)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(2.0)
        assert share.rebalance() is not None
    finally:
        hog.kill()
        hog.wait()
    assert share.threads < len(cores)
    assert threads_set == [share.threads]


def test_only_a_lone_cpu_process_with_threads_of_its_own_rebalances(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert CoreShare.for_this_process(torch.device("cpu"), local_world_size=1) is not None
    assert CoreShare.for_this_process(torch.device("cpu"), local_world_size=2) is None
    assert CoreShare.for_this_process(torch.device("meta"), local_world_size=1) is None
    monkeypatch.setattr(core_share, "PROC_STAT", "/nonexistent/stat")
    assert CoreShare.for_this_process(torch.device("cpu"), local_world_size=1) is None
    monkeypatch.undo()
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert CoreShare.for_this_process(torch.device("cpu"), local_world_size=1) is None


def test_the_loop_rebalances_between_steps(
    tiny_model: Path,
    small_data: tuple[Path, Path],
    config_for: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)  # whatever this machine has
    calls: list[str] = []
    monkeypatch.setattr(CoreShare, "rebalance", lambda self: calls.append("rebalance"))
    monkeypatch.setattr(CoreShare, "restore", lambda self: calls.append("restore"))
    train_file, _ = small_data
    config = config_for(
        tiny_model, train_file, tmp_path / "run", hp=Hyperparameters(n_epochs=1, batch_size=8)
    )
    result = train_sft(config, MemoryReporter())
    assert result.status == "succeeded"
    # Between the three steps (not after the last), then the threads are given back.
    assert calls == ["rebalance", "rebalance", "restore"]


def test_training_processes_spin_briefly_unless_a_wait_policy_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        monkeypatch.delenv(name, raising=False)
    set_model_process_environment()  # an inference or evaluation process: threads sleep at once
    assert "GOMP_SPINCOUNT" not in os.environ
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"

    monkeypatch.delenv("OMP_WAIT_POLICY")
    set_model_process_environment(training=True)
    assert os.environ["GOMP_SPINCOUNT"] == TRAINING_SPIN_COUNT

    monkeypatch.delenv("GOMP_SPINCOUNT")
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's choice stands
    set_model_process_environment(training=True)
    assert "GOMP_SPINCOUNT" not in os.environ
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
