"""The scheduler thread: takes the oldest waiting request and everything that can share its batch, runs it.

Requests for the same weights (a base model, whatever adapters they use) share a batch, and requests that
arrive while it runs join it between two decoding steps, within the batch limits; other weights wait for
the batch to end. One thread owns the models, so loading, eviction and generation never overlap.
"""

from __future__ import annotations

import logging
import time

import torch

from openft.inference.batch import RunningBatch
from openft.inference.config import EngineConfig, shared_cpu_threads
from openft.inference.emit import Sequence
from openft.inference.queueing import Job, WaitingQueue
from openft.inference.text import IncrementalDecoder, StopMatcher
from openft.inference.tokenizers import TokenizerCache
from openft.inference.types import EngineStats, ModelLoadError
from openft.inference.weights import LoadedWeights, WeightCache

log = logging.getLogger("openft.inference")


class Scheduler:
    def __init__(
        self, config: EngineConfig, queue: WaitingQueue, stats: EngineStats, tokenizers: TokenizerCache
    ) -> None:
        self.config = config
        self.queue = queue
        self.stats = stats
        self.tokenizers = tokenizers
        self.cache = WeightCache(config, stats)
        self.running: list[Job] = []  # read by LocalEngine.close from another thread

    def run_forever(self) -> None:
        # Per thread in torch's OpenMP pool: set here, it is what the model code below runs with.
        torch.set_num_threads(self.config.cpu_threads or shared_cpu_threads())
        self.stats.cpu_threads = torch.get_num_threads()
        while self.queue.wait():
            # Requests that arrive together (a client's concurrent calls) should start together.
            if self.config.batch_wait_s > 0:
                time.sleep(self.config.batch_wait_s)
            jobs = self.queue.take_batch(self.config.max_batch_sequences, self.config.max_batch_tokens)
            if jobs:
                self._run(jobs)

    def _run(self, jobs: list[Job]) -> None:
        self.stats.n_waiting = len(self.queue)
        try:
            weights = self.cache.weights(jobs[0].request.model.group_key)
            sequences = self._sequences(weights, jobs, [])
        except Exception as exc:
            _fail(jobs, exc)
            return
        if not sequences:
            return
        batch = RunningBatch(weights, self.cache.device)
        self.stats.n_batches += 1
        mixed = False
        try:
            while True:
                if sequences:
                    self.running = list({id(s.job): s.job for s in batch.sequences + sequences}.values())
                    batch.add(sequences)
                    self._count(batch)
                    if not mixed and len({s.adapter for s in batch.sequences}) > 1:
                        mixed = True
                        self.stats.n_mixed_adapter_batches += 1
                batch.step()
                self.stats.n_running = len(batch.sequences)
                if not batch.sequences:
                    return
                sequences = self._joiners(weights, batch)
        except Exception as exc:
            log.exception("generation failed")
            _fail(list({id(s.job): s.job for s in batch.sequences + sequences}.values()), exc)
        finally:
            batch.close()
            self.running = []
            self.stats.n_running = 0

    def _joiners(self, weights: LoadedWeights, batch: RunningBatch) -> list[Sequence]:
        """Sequences of waiting requests for the same weights that fit what the batch has left."""
        if not len(self.queue) or not batch.sequences:
            return []
        n_tokens = sum(
            len(s.job.request.prompt_ids) + s.job.request.params.max_tokens for s in batch.sequences
        )
        jobs = self.queue.take_joiners(
            weights.key,
            self.config.max_batch_sequences - len(batch.sequences),
            self.config.max_batch_tokens - n_tokens,
        )
        if not jobs:
            return []
        self.stats.n_joined += len(jobs)
        self.stats.n_waiting = len(self.queue)
        return self._sequences(weights, jobs, batch.sequences)

    def _count(self, batch: RunningBatch) -> None:
        self.stats.n_running = len(batch.sequences)
        self.stats.max_batch_sequences = max(self.stats.max_batch_sequences, len(batch.sequences))

    def _sequences(self, weights: LoadedWeights, jobs: list[Job], running: list[Sequence]) -> list[Sequence]:
        # Adapters in use by the batch or wanted by these jobs must not be evicted to make room.
        models = [j.request.model for j in jobs] + [s.job.request.model for s in running]
        pinned = {(weights.key, m.adapter_path) for m in models if m.adapter_path}
        sequences = []
        started_at = time.monotonic()
        for job in jobs:
            if self.config.max_request_s > 0:
                job.deadline_at = started_at + self.config.max_request_s
            model = job.request.model
            try:
                adapter = (
                    self.cache.adapter(weights, model.adapter_path, pinned) if model.adapter_path else None
                )
                tokenizer = self.tokenizers.get(model.tokenizer_path)
            except ModelLoadError as exc:
                job.sink(exc)
                continue
            texts = self.tokenizers.texts(model.tokenizer_path)
            for choice in range(job.n_sequences):
                decoder, stopper = IncrementalDecoder(tokenizer), StopMatcher(job.request.params.stop)
                sequences.append(Sequence(job, choice, adapter, decoder, stopper, texts))
        return sequences


def _fail(jobs: list[Job], exc: Exception) -> None:
    for job in jobs:
        job.sink(exc)
