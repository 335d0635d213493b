"""The built-in engine: transformers models in this process (CPU or GPU), LoRA adapters applied on top.

Importing this module is cheap; torch loads in the scheduler thread when the first request arrives.
Output crosses from that thread to the event loop through `call_soon_threadsafe`, so no coroutine ever
waits on a model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

from openft.inference.config import EngineConfig
from openft.inference.queueing import END, Event, Job, WaitingQueue
from openft.inference.tokenizers import TokenizerCache
from openft.inference.types import DeltaStream, EngineStats, GenerationRequest, ModelRef
from openft.train.environment import set_model_process_environment

log = logging.getLogger("openft.inference")


class LocalEngine:
    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.tokenizers = TokenizerCache()
        self._stats = EngineStats()
        self._queue = WaitingQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.scheduler: Any = None

    def tokenizer(self, model: ModelRef) -> Any:
        return self.tokenizers.get(model.tokenizer_path)

    def stats(self) -> EngineStats:
        self._stats.n_waiting = len(self._queue)
        return self._stats

    async def generate(self, request: GenerationRequest) -> DeltaStream:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Event] = asyncio.Queue()

        def sink(event: Event) -> None:
            # A closed loop (RuntimeError) means nobody is listening any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(events.put_nowait, event)

        job = Job(request=request, sink=sink)
        self._submit(job)
        try:
            while True:
                event = await events.get()
                if event is END:
                    return
                if isinstance(event, Exception):
                    raise event
                yield event
        finally:
            # Normal end, client gone or error: the scheduler drops the job's sequences at its next step.
            job.cancelled.set()

    def close(self) -> None:
        running = list(self.scheduler.running) if self.scheduler is not None else []
        for job in self._queue.close() + running:
            job.sink(RuntimeError("the inference engine is shutting down"))
            job.cancelled.set()  # a running batch drops the job at its next step
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.scheduler = None  # its models go with it (an engine made for one evaluation frees them)

    def _submit(self, job: Job) -> None:
        """Queue the job for the scheduler thread, starting it if none runs (under one lock with the
        thread's own end, so no job is queued for a thread that has just died)."""
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="openft-inference", daemon=True)
                self._thread.start()
            self._queue.put(job)

    def _run(self) -> None:
        try:
            # Threads that sleep while they wait, read when torch loads: spinning threads steal the cores
            # a training job on the same machine needs, and stall when it has them (the same environment
            # as every process that runs models; an explicit value wins).
            set_model_process_environment()
            from openft.inference.scheduler import Scheduler  # torch loads here, off the event loop

            self.scheduler = Scheduler(self.config, self._queue, self._stats, self.tokenizers)
            self.scheduler.run_forever()
        except BaseException as exc:
            # The thread is gone (a broken install, say): nobody may wait on it. The waiting requests get
            # the error, and the next request starts a new thread.
            log.exception("the inference engine's scheduler stopped")
            with self._start_lock:
                self._thread = None
                waiting = self._queue.take_all()
            for job in waiting:
                job.sink(RuntimeError(f"the inference engine stopped: {exc!r}"))
                job.cancelled.set()
