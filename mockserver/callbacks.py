"""Callback delivery: the engine queues a :class:`~mockserver.engine.Delivery` on every status
change of a task that has a callback URL; this module renders each through the task's face and
sends it with a ``send`` function the door provides.

- In-process, the kit sends through its respx router, so a test's own route for the URL gets
  the POST (and an unrouted URL is recorded as such, never sent to the network).
- Out of process, :class:`CallbackWorker` POSTs over HTTP from a thread, only to allow-listed
  hosts (loopback by default), with a bounded retry schedule in clock time.

Every attempt is recorded on the delivery (``Engine.deliveries()``, ``GET /__mock__/callbacks``).
"""

from __future__ import annotations

import functools
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mockserver.engine import Delivery, TaskNotFound, TaskView
from mockserver.http import dump_json

if TYPE_CHECKING:
    from mockserver.service import Service

__all__ = ["CallbackWorker", "Send", "deliver_due", "http_send"]

#: ``send(url, json_bytes) -> HTTP status, or an error text`` (2xx counts as delivered)
Send = Callable[[str, bytes], "int | str"]


def deliver_due(service: Service, send: Send, *, base_url: str | None = None) -> list[Delivery]:
    """Make every delivery that is due on the engine's clock; returns the updated deliveries.

    The body is the task as its face's callback shows it, rendered when it is sent (so a
    retried delivery carries the task's status at that change, not a later one).
    """
    engine = service.engine
    done: list[Delivery] = []
    # A task's next status waits for the previous one, so a pass that delivers something may
    # have unblocked more; passes repeat until one delivers nothing (at most the outbox's size).
    while True:
        delivered = False
        for item in engine.due_deliveries():
            updated = _attempt(service, item, send, base_url)
            if updated is not None:
                done.append(updated)
                delivered = delivered or updated.delivered
        if not delivered:
            break
    return done


def _attempt(service: Service, item: Delivery, send: Send, base_url: str | None) -> Delivery | None:
    engine = service.engine
    try:
        task = engine.task(item.task_id)
    except TaskNotFound:  # reset while the delivery was due
        return None
    face = service.faces.get(task.face) or service.face
    schedule = service.callback_retries(face)
    link_base = base_url or service.public_base_url or (face.contract.base_urls or ("http://127.0.0.1",))[0]
    hosts = face.settings.callback_hosts
    if "*" not in hosts and (urlsplit(item.url).hostname or "").lower() not in {h.lower() for h in hosts}:
        refused = f"refused: host not in the callback allow-list ({', '.join(hosts)})"
        return engine.record_attempt(item.seq, refused, delivered=False, retry_in=None)
    result = send(item.url, dump_json(face.callback_body(_as_of(task, item), link_base)))
    ok = isinstance(result, int) and 200 <= result < 300
    attempt = len(item.attempts)
    retry_in = None if ok or attempt >= len(schedule) else float(schedule[attempt])
    return engine.record_attempt(item.seq, result, delivered=ok, retry_in=retry_in)


def _as_of(task: TaskView, item: Delivery) -> TaskView:
    """The task as it was when ``item``'s status change happened."""
    return replace(task, status=item.status, updated_at=item.at)


def http_send(timeout: float = 5.0) -> Send:
    """A ``send`` that POSTs JSON over HTTP(S) with the standard library (no redirects)."""

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *_args: object, **_kwargs: object) -> None:
            return None  # a redirect could lead off the allow-list

    @functools.cache
    def opener() -> urllib.request.OpenerDirector:
        # Built for the first callback: most servers never send one, and building it reads the
        # environment's proxy settings (a third of a live server's start).
        return urllib.request.build_opener(_NoRedirect)

    def send(url: str, body: bytes) -> int | str:
        try:
            # inside the try: a URL urllib cannot read (``http://[``) is a failed attempt, not a
            # crash of the thread that delivers callbacks
            headers = {"Content-Type": "application/json", "User-Agent": "kling-testkit"}
            request = urllib.request.Request(url, data=body, method="POST", headers=headers)
            with opener().open(request, timeout=timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except (OSError, ValueError) as exc:
            return f"error: {type(exc).__name__}: {str(exc)[:200]}"

    return send


class CallbackWorker:
    """A daemon thread that brings tasks up to the clock and makes due deliveries every
    ``interval`` seconds of real time (the live server's callback door). ``wake()`` starts it
    on first use and makes it deliver now: a server that never sees a callback URL never
    runs the thread."""

    def __init__(self, service: Service, *, interval: float = 0.2, send: Send | None = None) -> None:
        self.service = service
        self.interval = interval
        self.send = send or http_send()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        # The worker and a test thread (after a clock advance) may both flush: one at a time,
        # so no delivery is sent twice.
        self._lock = threading.Lock()

    def start(self) -> CallbackWorker:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="kling-callbacks", daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        """Deliver what is due now, from the worker thread (started if it was not)."""
        if self._thread is None and not self._stop.is_set():
            self.start()
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            self.run_once()

    def run_once(self) -> Sequence[Delivery]:
        """One pass: tick the engine, deliver what is due."""
        with self._lock:
            self.service.engine.tick()
            return deliver_due(self.service, self.send)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
