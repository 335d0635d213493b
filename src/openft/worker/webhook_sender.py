"""A background thread that delivers queued webhook events (in the server and in `openft worker`)."""

from __future__ import annotations

import logging
import threading

from openft.services.context import ServiceContext
from openft.services.webhook_delivery import RetryPolicy, deliver_due
from openft.settings import Settings

log = logging.getLogger("openft.webhooks")


def webhook_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(base_delay_s=settings.webhook_retry_base_s, max_attempts=settings.webhook_max_attempts)


class WebhookSender:
    def __init__(
        self, ctx: ServiceContext, policy: RetryPolicy | None = None, poll_interval_s: float = 0.5
    ) -> None:
        self.ctx = ctx
        self.policy = policy or RetryPolicy()
        self.poll_interval_s = poll_interval_s
        self.stop_event = threading.Event()

    def run_forever(self) -> None:
        while not self.stop_event.is_set():
            try:
                sent = deliver_due(self.ctx, self.policy)
            except Exception:
                log.exception("webhook delivery failed unexpectedly")
                sent = False
            if not sent:
                self.stop_event.wait(self.poll_interval_s)

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name="openft-webhooks", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stop_event.set()
