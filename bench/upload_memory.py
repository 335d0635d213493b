"""Server memory while large fine-tune files are uploaded: the goal is a flat RSS (peak under 200 MB).

Starts `openft serve` on a temporary data dir, then through the official openai SDK:
  1. uploads a 1 GiB JSONL with `client.uploads.upload_file_chunked` (64 MiB parts),
  2. uploads a 400 MiB JSONL with `client.files.create`,
  3. downloads both with `files.content` (streamed) and checks their sha256.
The server's RSS is sampled every 50 ms. The training files are generated on disk, never in memory.

    .venv/bin/python bench/upload_memory.py [--big-mb 1024] [--single-mb 400] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psutil
from openai import OpenAI

from bench.live_server import start_server

MiB = 1024 * 1024
PART_BYTES = 64 * MiB
SAMPLE_EVERY_S = 0.05
RSS_GOAL_MB = 200


def write_training_file(path: Path, target_bytes: int) -> tuple[int, str]:
    """Chat examples up to `target_bytes` (cut at a line end), streamed to disk; returns size and sha256."""
    block = b"".join(
        json.dumps(
            {
                "messages": [
                    {"role": "system", "content": "You are a terse assistant."},
                    {"role": "user", "content": f"What is {i} squared? " + "Explain briefly. " * (i % 7)},
                    {"role": "assistant", "content": f"{i * i}."},
                ]
            }
        ).encode()
        + b"\n"
        for i in range(2000)
    )
    digest, written = hashlib.sha256(), 0
    with path.open("wb") as handle:
        while written + len(block) <= target_bytes:
            handle.write(block)
            digest.update(block)
            written += len(block)
        tail = block[: block.rfind(b"\n", 0, target_bytes - written) + 1]
        handle.write(tail)
        digest.update(tail)
        written += len(tail)
    return written, digest.hexdigest()


class RssSampler:
    """Peak resident memory of one process, sampled in a thread; `mark` starts a new phase."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.baseline_mb = self.rss_mb()
        self.peak_mb = self.baseline_mb
        self.phase_peaks: dict[str, float] = {}
        self._phase = "start"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def rss_mb(self) -> float:
        return self.process.memory_info().rss / MiB

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                rss = self.rss_mb()
            except psutil.NoSuchProcess:
                return
            self.peak_mb = max(self.peak_mb, rss)
            self.phase_peaks[self._phase] = max(self.phase_peaks.get(self._phase, 0.0), rss)
            time.sleep(SAMPLE_EVERY_S)

    def mark(self, phase: str) -> None:
        self._phase = phase

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def time_calls_to(resource: object, method: str) -> list[float]:
    """Record when `resource.method` is first called (to split the chunked upload into its steps)."""
    started: list[float] = []
    original = getattr(resource, method)

    def timed(*args: object, **kwargs: object) -> object:
        started.append(time.perf_counter())
        return original(*args, **kwargs)

    setattr(resource, method, timed)
    return started


def downloaded_sha256(client: OpenAI, file_id: str) -> str:
    digest = hashlib.sha256()
    with client.files.with_streaming_response.content(file_id) as response:
        for chunk in response.iter_bytes(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--big-mb", type=int, default=1024, help="size of the chunked upload (MiB)")
    parser.add_argument("--single-mb", type=int, default=400, help="size of the files.create upload (MiB)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="openft-bench-"))
    process = None
    try:
        print(f"generating {args.big_mb} MiB and {args.single_mb} MiB JSONL files in {work} ...", flush=True)
        big_path, single_path = work / "big.jsonl", work / "single.jsonl"
        big_bytes, big_sha = write_training_file(big_path, args.big_mb * MiB)
        single_bytes, single_sha = write_training_file(single_path, args.single_mb * MiB)

        process, base_url = start_server(work / "data")
        client = OpenAI(base_url=base_url, api_key="local", max_retries=0, timeout=1800)
        sampler = RssSampler(process.pid)
        print(f"server pid {process.pid}, RSS at start {sampler.baseline_mb:.0f} MB", flush=True)

        sampler.mark("chunked upload")
        complete_started = time_calls_to(client.uploads, "complete")
        started = time.perf_counter()
        upload = client.uploads.upload_file_chunked(
            file=big_path, mime_type="application/jsonl", purpose="fine-tune", part_size=PART_BYTES
        )
        chunked_s = time.perf_counter() - started
        parts_s = complete_started[0] - started
        assert upload.file is not None, upload

        sampler.mark("files.create")
        started = time.perf_counter()
        with single_path.open("rb") as handle:
            single = client.files.create(file=handle, purpose="fine-tune")
        single_s = time.perf_counter() - started

        sampler.mark("download")
        started = time.perf_counter()
        big_match = downloaded_sha256(client, upload.file.id) == big_sha
        single_match = downloaded_sha256(client, single.id) == single_sha
        download_s = time.perf_counter() - started
        sampler.stop()

        print()
        print(f"{'phase':<16}{'MiB':>8}{'seconds':>10}{'MB/s':>9}{'peak RSS MB':>13}  result")
        rows = [
            ("chunked upload", big_bytes, chunked_s, upload.file.status, big_match),
            ("files.create", single_bytes, single_s, single.status, single_match),
        ]
        for name, n_bytes, seconds, status, match in rows:
            print(
                f"{name:<16}{n_bytes / MiB:>8.0f}{seconds:>10.1f}{n_bytes / MiB / seconds:>9.1f}"
                f"{sampler.phase_peaks.get(name, 0):>13.0f}  status={status} sha256 match={match}"
            )
            if name == "chunked upload":
                print(
                    f"  of which: parts sent in {parts_s:.1f} s ({big_bytes / MiB / parts_s:.1f} MB/s), "
                    f"complete (assemble + scan) {chunked_s - parts_s:.1f} s"
                )
        total = big_bytes + single_bytes
        print(
            f"{'download both':<16}{total / MiB:>8.0f}{download_s:>10.1f}{total / MiB / download_s:>9.1f}"
            f"{sampler.phase_peaks.get('download', 0):>13.0f}"
        )
        verdict = "OK" if sampler.peak_mb < RSS_GOAL_MB else "OVER GOAL"
        print(
            f"\nserver RSS: start {sampler.baseline_mb:.0f} MB, peak {sampler.peak_mb:.0f} MB "
            f"(goal < {RSS_GOAL_MB} MB: {verdict})"
        )
        print(f"sha256 match: chunked={big_match} files.create={single_match}")
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
