"""The composition root: the one place that builds a server process (or a worker process) from settings.

`api/` only routes: it reads what it needs (context, engine, eval runner, a way to wake the worker)
through its dependencies, and this module puts those there. The HTTP layer never starts a thread, a
worker or an engine of its own.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

from fastapi import FastAPI

from openft.api.app import create_app
from openft.api.deps import AppServices, install_services
from openft.inference.types import Engine
from openft.services import inference
from openft.services.context import ServiceContext
from openft.services.eval_exec import EvalRunner
from openft.services.files import sweep_storage
from openft.services.webhook_addresses import AddressPolicy
from openft.services.webhook_test_calls import EndpointTestSlots
from openft.settings import Settings
from openft.worker.job_evaluation import EngineLease
from openft.worker.loop import Worker
from openft.worker.webhook_sender import WebhookSender, webhook_policy


class LazyEngine:
    """The process's inference engine, made on first use and closed with the process.

    Chat requests and eval runs share it; anything else that generates (a worker-side evaluation) takes
    this object, or its `get`, as a parameter rather than making an engine of its own.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def get(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = inference.new_engine(self._settings)
            return self._engine

    @property
    def current(self) -> Engine | None:
        """The engine if one was made (and not yet closed); never makes one."""
        return self._engine

    @contextmanager
    def lease(self) -> Iterator[Engine]:
        """Lend the engine for a while (a job's evaluation): it stays open for chat afterwards."""
        yield self.get()

    def close(self) -> None:
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()


@dataclass(frozen=True)
class WorkerOptions:
    name: str | None = None  # in job records; default host-pid
    heartbeat_s: float = 2.0
    stale_after_s: float = 30.0
    max_attempts: int = 3


def build_worker(
    ctx: ServiceContext, options: WorkerOptions = WorkerOptions(), *, engine_lease: EngineLease | None = None
) -> Worker:
    """The job queue's worker, for the server (in a thread) and for `openft worker` (in the foreground).

    In the server, job evaluations answer through the server's own engine (`engine_lease`); a
    standalone worker makes one per evaluation."""
    return Worker(
        ctx,
        engine_lease=engine_lease,
        name=options.name,
        heartbeat_s=options.heartbeat_s,
        stale_after_s=options.stale_after_s,
        max_attempts=options.max_attempts,
    )


def build_webhook_sender(ctx: ServiceContext) -> WebhookSender:
    return WebhookSender(ctx, webhook_policy(ctx.settings))


class Server:
    """One server process: the app and everything its routes reach, started and stopped together."""

    def __init__(
        self,
        context: ServiceContext,
        *,
        engine: LazyEngine,
        eval_runner: EvalRunner,
        webhook_sender: WebhookSender,
        worker: Worker | None,
    ) -> None:
        self.context = context
        self.engine = engine
        self.eval_runner = eval_runner
        self.webhook_sender = webhook_sender
        self.worker = worker
        self.app = create_app(lifespan=self._lifespan)
        install_services(
            self.app,
            AppServices(
                context=context,
                engine=engine.get,
                eval_runner=eval_runner,
                wake_worker=worker.wake if worker is not None else _nobody_to_wake,
                webhook_test_slots=EndpointTestSlots(context.settings.webhook_test_max_in_flight),
            ),
        )

    @property
    def settings(self) -> Settings:
        return self.context.settings

    async def start(self) -> None:
        """Start the background work; runs on the event loop that serves the app."""
        sweep_storage(self.context)
        if self.worker is not None:
            self.worker.start_in_thread()
        self.webhook_sender.start_in_thread()
        # Eval runs execute in this process; unfinished ones left by an earlier server are taken over.
        self.eval_runner.start_sweeping()

    async def stop(self) -> None:
        await self.eval_runner.close()
        self.webhook_sender.stop()
        if self.worker is not None:
            self.worker.stop()
        self.engine.close()
        self.context.close()

    @asynccontextmanager
    async def _lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()


def build_server(settings: Settings, *, local_mode_allowed: bool = True, run_worker: bool = True) -> Server:
    """Everything `openft serve` runs, unstarted: the app's lifespan starts and stops it."""
    # A mistyped OPENFT_WEBHOOK_ALLOWED_HOSTS fails the start, not every webhook request later.
    AddressPolicy.from_entries(settings.webhook_allowed_hosts)
    context = ServiceContext.open(settings, local_mode_allowed=local_mode_allowed)
    engine = LazyEngine(settings)
    return Server(
        context,
        engine=engine,
        eval_runner=EvalRunner(context, engine.get),
        webhook_sender=build_webhook_sender(context),
        worker=build_worker(context, engine_lease=engine.lease) if run_worker else None,
    )


class WorkerProcess:
    """`openft worker`: the queue's worker in the foreground and the webhook sender beside it."""

    def __init__(self, context: ServiceContext, worker: Worker) -> None:
        self.context = context
        self.worker = worker
        self.webhook_sender = build_webhook_sender(context)

    def run(self) -> None:
        """Run jobs until `stop()` (from a signal handler), then release everything."""
        self.webhook_sender.start_in_thread()
        try:
            self.worker.run_forever()
        finally:
            self.webhook_sender.stop()
            self.context.close()

    def stop(self) -> None:
        self.worker.stop()


def build_worker_process(settings: Settings, options: WorkerOptions = WorkerOptions()) -> WorkerProcess:
    context = ServiceContext.open(settings)
    return WorkerProcess(context, build_worker(context, options))


def _nobody_to_wake() -> None:
    """A server without a worker: jobs wait for a standalone `openft worker`, which polls."""
