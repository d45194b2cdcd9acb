"""The fake as a live HTTP server in a thread, for clients that are not httpx.

``requests``, ``aiohttp``, subprocesses and other languages need a real socket. A
:class:`LiveServer` runs uvicorn in a daemon thread on ``127.0.0.1`` and a free port, with the
same engine and service the in-process fake uses; because the engine lives in *this* process,
the controls (``reset()``, ``advance_clock()``, ``arm_fault()``...) act on it directly: a reset
costs microseconds, not a request. The admin API at ``{base_url}/__mock__/`` drives the same
engine from anywhere else, and :class:`AdminClient` speaks it with the same verbs.

Errors raised while the server thread answers (a bug in the fake, not a client mistake) are
kept and raised in the test thread at the next control call or at :meth:`LiveServer.check`
(the fixtures call it at teardown), instead of vanishing into a log.

    with LiveServer() as server:
        requests.get(server.base_url + "/openapi.json")
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
import uvicorn

from kling_testkit._mock import EngineControls, as_key_pairs, as_outcome, as_progression, build_service
from kling_testkit.errors import KlingTestkitError
from mockserver import Clock, FaultPlan, Outcome, OutcomeRule, Progression
from mockserver._uvicorn import ThreadServer
from mockserver.app import create_app
from mockserver.callbacks import CallbackWorker
from mockserver.door import uvicorn_options
from mockserver.engine import Delivery, Journal, JournalEntry, TaskView
from mockserver.engine.journal import ContractWarning
from mockserver.faces import Mount
from mockserver.serve import bind
from mockserver.service import admin_exposure, host_name

__all__ = ["AdminClient", "LiveServer", "ServerError"]


class ServerError(KlingTestkitError, RuntimeError):
    """An exception raised in the server thread, re-raised in the test (its cause is the original)."""


class _CapturingApp:
    """ASGI wrapper that keeps exceptions escaping the app, for the test thread to raise."""

    def __init__(self, app: Any, errors: list[BaseException]) -> None:
        self.app = app
        self.errors = errors

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            # Shutdown cancels in-flight requests: that is the server stopping, not a bug in the fake.
            raise
        except BaseException as exc:
            self.errors.append(exc)
            raise


class LiveServer(EngineControls):
    """The fake on ``http://127.0.0.1:<free port>``, sharing its engine with the test thread.

    Options are :class:`~kling_testkit.KlingMock`'s (``progression``, ``outcome``, ``strict``,
    ``keys``, ``seed``, ``clock``) plus ``host``, ``public_base_url`` (result links and the
    OpenAPI ``servers`` entry; default: the bound address) and ``allowed_hosts`` (names admin
    requests may carry in ``Host`` besides loopback and the bound address). On a non-loopback
    ``host`` the admin API needs a token: without ``admin_token`` a random one is made
    (:attr:`admin_token`; :meth:`admin` sends it). A wildcard ``host`` (``0.0.0.0``, ``::``) is
    reached, and linked, on loopback (:attr:`base_url`) unless ``public_base_url`` names the
    address other machines use. :meth:`reset` restores the options given here
    (or by :meth:`configure`) after clearing state. Responses carry no ``Date`` header, so they
    are byte-identical to the in-process fake's.

    >>> with LiveServer() as server:
    ...     httpx.get(server.base_url + "/v1/video/generations/task_x").status_code
    401
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        progression: Progression | str | None = None,
        outcome: Outcome | str | None = None,
        strict: bool = False,
        keys: Sequence[str] | None = None,
        seed: int | None = 0,
        clock: Clock | None = None,
        journal_limit: int = 10_000,
        admin_token: str | None = None,
        faces: Sequence[str | Mount] | None = None,
        key_pairs: Mapping[str, str] | Iterable[str] | None = None,
        slots: int | None = None,
        callback_hosts: Sequence[str] | None = None,
        tls: bool = False,
        public_base_url: str | None = None,
        allowed_hosts: Sequence[str] = (),
    ) -> None:
        self._progression = as_progression(progression) if progression is not None else Progression()
        self._outcome = as_outcome(outcome) if outcome is not None else Outcome()
        self.service = build_service(
            progression=self._progression,
            outcome=self._outcome,
            strict=strict,
            keys=keys,
            seed=seed,
            clock=clock,
            journal_limit=journal_limit,
            admin_token=admin_token,
            faces=faces,
            key_pairs=key_pairs,
            slots=slots,
            callback_hosts=callback_hosts,
        )
        self.service.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.service.allowed_hosts.update(host_name(h) for h in allowed_hosts)
        self.tls = tls
        #: the CA bundle clients must trust when ``tls=True`` (set by :meth:`start`)
        self.ca_bundle: str | None = None
        self._callbacks: CallbackWorker | None = None
        self.engine = self.service.engine
        self.host = host
        self.port = port
        self.admin_token = admin_token
        self._errors: list[BaseException] = []
        self._server: ThreadServer | None = None
        self._thread: threading.Thread | None = None
        self._admin: AdminClient | None = None
        self.base_url = ""

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> LiveServer:
        """Bind a port, start uvicorn in a daemon thread, return once it accepts connections."""
        if self._thread is not None:
            return self
        if admin_exposure(self.host, admin=self.service.admin, admin_token=self.service.admin_token):
            # The rule of every door (a token for admin beyond loopback); the test process drives
            # this engine directly, so a fresh random token costs nothing: admin() sends it.
            self.admin_token = self.service.admin_token = secrets.token_urlsafe(24)
        self.service.check_bind(self.host)
        sock = bind(self.host, self.port)
        host, port = sock.getsockname()[:2]
        self.port = port
        if host in ("0.0.0.0", "::"):  # every address: this process reaches it on loopback
            host = "127.0.0.1" if host == "0.0.0.0" else "::1"
        shown = f"[{host}]" if ":" in host else host
        tls: dict[str, Any] = {}
        if self.tls:
            from mockserver.tls import make_tls

            files = make_tls([self.host])
            self.ca_bundle = str(files.ca_bundle)
            tls = {"ssl_certfile": str(files.cert), "ssl_keyfile": str(files.key)}
        self.base_url = f"{'https' if self.tls else 'http'}://{shown}:{port}"
        self.service.bound(self.base_url)
        config = uvicorn.Config(
            _CapturingApp(create_app(self.service), self._errors),
            # No log_config: uvicorn would re-run logging.dictConfig over the test process's own
            # logging (and pay ~0.6 ms for it); its loggers propagate to pytest's capture instead.
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            server_header=False,
            date_header=False,
            **uvicorn_options(self.service),
            **tls,
        )
        server = ThreadServer(config)
        self._server = server

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # startup failures and loop crashes reach the test
                self._errors.append(exc)
            finally:
                server.ready.set()
                sock.close()

        self._thread = threading.Thread(target=run, name=f"kling-live-server:{port}", daemon=True)
        self._thread.start()
        server.ready.wait(30)
        if not server.started:
            self.stop()
            self.check()
            raise ServerError(f"the live server on {self.base_url} did not start")
        self._callbacks = CallbackWorker(self.service)
        self.service.on_deliveries = self._callbacks.wake
        return self

    def stop(self) -> None:
        """Stop the server and join its thread (fast: no graceful pause)."""
        self.close_admin()
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if self._callbacks is not None:
            self._callbacks.stop()
            self._callbacks = None
        if server is not None:
            server.request_exit()
        if thread is not None:
            thread.join(10)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if exc_type is None:
            self.check()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def url(self) -> str:
        """Alias of :attr:`base_url`."""
        return self.base_url

    @property
    def admin_url(self) -> str:
        return self.base_url + "/__mock__"

    def admin(self) -> AdminClient:
        """This server's :class:`AdminClient` (the control API over HTTP), made on first use and
        kept until :meth:`close_admin` or :meth:`stop` closes it (the ``kling_server`` fixture does
        after each test), so its connections never outlive the test as ResourceWarnings.

        >>> with LiveServer() as server:
        ...     server.admin().advance_clock(5) - server.clock.now(), server.admin() is server.admin()
        (0.0, True)
        """
        if self._admin is None or self._admin.closed:
            self._admin = AdminClient(self.base_url, admin_token=self.admin_token)
        return self._admin

    def close_admin(self) -> None:
        """Close the client :meth:`admin` made, if any (the next :meth:`admin` makes a new one)."""
        admin, self._admin = self._admin, None
        if admin is not None:
            admin.close()

    # -- errors ------------------------------------------------------------------------------

    def check(self) -> None:
        """Raise :class:`ServerError` for the first exception the server thread hit (once)."""
        if self._errors:
            first, more = self._errors[0], len(self._errors) - 1
            self._errors.clear()
            extra = f" (and {more} more)" if more else ""
            raise ServerError(f"the live server raised {type(first).__name__}: {first}{extra}") from first

    # -- controls: the engine's, with the server's errors surfaced first ----------------------

    def configure(
        self,
        *,
        progression: Progression | str | None = None,
        outcome: Outcome | str | None = None,
        strict: bool = False,
        keys: Sequence[str] | None = None,
        key_pairs: Mapping[str, str] | Iterable[str] | None = None,
        slots: int | None = None,
    ) -> None:
        """Replace the settings :meth:`reset` restores (the constructor's defaults where a value is
        None): default progression and outcome, unknown-field mode, accepted keys and key pairs,
        slots per account. Keys, pairs, slots and mode apply from the next request; call
        :meth:`reset` to apply the rest to a clean state."""
        self._progression = as_progression(progression) if progression is not None else Progression()
        self._outcome = as_outcome(outcome) if outcome is not None else Outcome()
        wanted = tuple(keys) if keys is not None else None
        pairs = as_key_pairs(key_pairs)
        settings = self.service.settings
        if (settings.strict, settings.keys, settings.key_pairs, settings.slots) != (strict, wanted, pairs, slots):
            self.service.configure(
                keys=wanted, key_pairs=pairs, strict=strict, slots=slots, callback_hosts=settings.callback_hosts
            )

    def reset(self) -> None:
        """Forget tasks, policies, faults and the journal; rewind the virtual clock; restore the
        default progression and outcome given at construction or by :meth:`configure`."""
        self.check()
        # One locked step: a create arriving between a reset and a set_* would get stale policies.
        self.engine.reset(progression=self._progression, outcome=self._outcome)

    def advance_clock(self, seconds: float) -> float:
        self.check()
        return super().advance_clock(seconds)

    def deliver_callbacks(self) -> list[Delivery]:
        """Send due callbacks now over HTTP (a worker thread also does so every 0.2 s)."""
        return list(self._callbacks.run_once()) if self._callbacks is not None else []

    def set_progression(self, progression: Progression | str, task_id: str | None = None) -> None:
        self.check()
        super().set_progression(progression, task_id)

    def set_outcome(self, outcome: Outcome | str, task_id: str | None = None) -> None:
        self.check()
        super().set_outcome(outcome, task_id)

    def add_outcome_rule(self, rule: OutcomeRule | Any) -> None:
        self.check()
        super().add_outcome_rule(rule)

    def arm_fault(self, plan: FaultPlan | None = None, /, **fields: Any) -> int:
        self.check()
        return super().arm_fault(plan, **fields)

    def clear_faults(self) -> None:
        self.check()
        super().clear_faults()

    @property
    def journal(self) -> Journal:
        self.check()
        return self.engine.journal

    def entries(self, *, operation: str | None = None, task_id: str | None = None) -> list[JournalEntry]:
        self.check()
        return super().entries(operation=operation, task_id=task_id)

    def warnings(self) -> list[tuple[JournalEntry, ContractWarning]]:
        self.check()
        return super().warnings()

    def tasks(self) -> list[TaskView]:
        self.check()
        return super().tasks()

    def task(self, task_id: str) -> TaskView:
        self.check()
        return super().task(task_id)

    def advance(self, task_id: str) -> TaskView:
        self.check()
        return super().advance(task_id)

    def __repr__(self) -> str:
        return f"<LiveServer {self.base_url or '(not started)'}>"


class AdminClient:
    """The admin API (``/__mock__/``) over HTTP, with the engine's verbs; for a server in another
    process (``kling-testkit serve``) or to exercise the admin API itself. Answers are the admin
    API's JSON; errors raise ``httpx.HTTPStatusError``.

    >>> with LiveServer(progression="manual") as server, AdminClient(server.base_url) as admin:
    ...     start = server.clock.now()
    ...     moved = admin.advance_clock(30)
    ...     fault_id = admin.arm_fault(operation="video_generations.get", error="upstream_error", times=2)
    ...     faults = server.faults()  # the same engine, read in-process
    >>> moved - start, [(f["id"] == fault_id, f["operation"], f["times"]) for f in faults]
    (30.0, [(True, 'video_generations.get', 2)])
    """

    def __init__(self, base_url: str, *, admin_token: str | None = None, timeout: float = 10.0) -> None:
        headers = {"x-mock-admin-token": admin_token} if admin_token else {}
        self._client = httpx.Client(base_url=base_url.rstrip("/") + "/__mock__", headers=headers, timeout=timeout)

    def close(self) -> None:
        """Close the HTTP connection pool (``with AdminClient(url) as admin:`` does it for you)."""
        self._client.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (a closed client refuses further calls)."""
        return self._client.is_closed

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, json: Any = None, params: dict[str, str] | None = None) -> Any:
        response = self._client.request(method, path, json=json, params=params)
        response.raise_for_status()
        return response.json()

    @staticmethod
    def _task_path(task_id: str, suffix: str = "") -> str:
        # An empty id would address the collection ("/tasks/") or another route, and an id with
        # "/" or "?" another path: quote it whole, and refuse the empty one outright.
        if not task_id:
            raise ValueError("task_id must be a non-empty string")
        return f"/tasks/{quote(task_id, safe='')}{suffix}"

    def reset(self) -> None:
        """Forget tasks, policies, faults and the journal; rewind the virtual clock (``POST /reset``)."""
        self._call("POST", "/reset")

    def clock(self) -> dict[str, Any]:
        """The clock's current time as the admin API reports it (``GET /clock``)."""
        return dict(self._call("GET", "/clock"))

    def advance_clock(self, seconds: float) -> float:
        """Move the virtual clock forward by ``seconds``; returns the new time (``POST /clock/advance``)."""
        return float(self._call("POST", "/clock/advance", {"seconds": seconds})["now"])

    def set_progression(self, progression: Progression | str, task_id: str | None = None) -> None:
        """Set the default progression, or one task's when ``task_id`` is given (empty: ValueError)."""
        path = self._task_path(task_id, "/progression") if task_id is not None else "/progression"
        self._call("POST", path, as_progression(progression).to_json())

    def set_outcome(self, outcome: Outcome | str, task_id: str | None = None) -> None:
        """Set the default outcome, or one task's when ``task_id`` is given (empty: ValueError)."""
        path = self._task_path(task_id, "/outcome") if task_id is not None else "/outcome"
        self._call("POST", path, as_outcome(outcome).to_json())

    def add_outcome_rule(self, rule: OutcomeRule | dict[str, Any]) -> None:
        """Add an outcome rule (an :class:`OutcomeRule` or its JSON form) for tasks created from now on."""
        self._call("POST", "/outcome/rules", rule.to_json() if isinstance(rule, OutcomeRule) else rule)

    def policies(self) -> dict[str, Any]:
        """The default progression and outcome and the outcome rules (``GET /policies``)."""
        return dict(self._call("GET", "/policies"))

    def arm_fault(self, plan: FaultPlan | None = None, /, **fields: Any) -> int:
        """Arm a fault plan (or build one from ``fields``); returns its id (``POST /faults``)."""
        plan = plan if plan is not None else FaultPlan(**fields)
        return int(self._call("POST", "/faults", plan.to_json())["id"])

    def faults(self) -> list[dict[str, Any]]:
        """The armed fault plans with their ids and seen/fired counts (``GET /faults``)."""
        return list(self._call("GET", "/faults")["faults"])

    def clear_faults(self) -> None:
        """Disarm every fault plan (``DELETE /faults``)."""
        self._call("DELETE", "/faults")

    def journal(self, *, operation: str | None = None, task_id: str | None = None) -> list[dict[str, Any]]:
        """The journal records (``JournalEntry.to_json()`` each)."""
        params = {k: v for k, v in (("operation", operation), ("task_id", task_id)) if v is not None}
        return list(self._call("GET", "/journal", params=params)["entries"])

    def warnings(self) -> list[dict[str, Any]]:
        """The contract warnings the journal recorded (``GET /warnings``)."""
        return list(self._call("GET", "/warnings")["warnings"])

    def tasks(self) -> list[dict[str, Any]]:
        """Every task, oldest first; reading does not count as a poll (``GET /tasks``)."""
        return list(self._call("GET", "/tasks")["tasks"])

    def task(self, task_id: str) -> dict[str, Any]:
        """One task; reading does not count as a poll (``GET /tasks/{id}``)."""
        return dict(self._call("GET", self._task_path(task_id)))

    def advance(self, task_id: str) -> dict[str, Any]:
        """Step one task to its next status by hand (``POST /tasks/{id}/advance``)."""
        return dict(self._call("POST", self._task_path(task_id, "/advance")))
