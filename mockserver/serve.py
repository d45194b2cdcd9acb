"""Run the fake under uvicorn: ``kling-testkit serve`` and ``python -m mockserver``.

The listening socket is created here (with ``IPPROTO_TCP``: uvicorn on asyncio stalls about
40 ms per request on a pre-bound socket created without it) so that ``--port 0`` works and the
printed base URL is the real one. Admin routes on a non-loopback bind need ``--admin-token``
(:func:`mockserver.service.admin_exposure`, the rule every door that binds applies).

SIGTERM or SIGINT stops the server at once when it is idle (no 0.1 s tick to wait for, no fixed
grace pause): it stops accepting, closes idle connections, lets requests in flight finish for up
to ``--shutdown-grace`` seconds (5 by default; then their connections are cut), and exits 0. A
second SIGINT abandons the requests in flight at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import signal
import socket
import sys
import threading
from collections.abc import Generator, Sequence
from types import FrameType

import uvicorn

from mockserver.app import create_app
from mockserver.callbacks import CallbackWorker
from mockserver.door import uvicorn_options
from mockserver.engine import Engine, Outcome, Progression, SystemClock, VirtualClock
from mockserver.faces import face_names
from mockserver.service import AdminExposed, Service, is_loopback

__all__ = ["SHUTDOWN_GRACE", "add_arguments", "bind", "is_loopback", "main", "run", "tune_gc_for_server"]

#: seconds a stopping server lets requests in flight finish before it cuts their connections
SHUTDOWN_GRACE = 5.0


def tune_gc_for_server() -> None:
    """Make the cyclic GC cheap for a process that holds many long-lived tasks.

    A fake that holds 100 000 tasks and journal entries would otherwise re-traverse them on
    every young-generation pass, and create/poll latency would grow with the task count. Only
    the dedicated server process does this; the in-process mock never touches a user's GC.
    """
    gc.collect()
    gc.freeze()  # import-time objects never die: keep them out of every collection
    gc.set_threshold(50_000, 20, 100)


def _outcome(text: str) -> Outcome:
    try:
        return Outcome.parse(text)
    except ValueError as exc:  # argparse prints an ArgumentTypeError's message as it is
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535 (0 picks a free one), got {port}")
    return port


def _progression(text: str) -> Progression:
    try:
        return Progression.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _key_pair(text: str) -> tuple[str, str]:
    access, sep, secret = text.partition(":")
    if not sep or not access or not secret:
        raise argparse.ArgumentTypeError(f"use ACCESS_KEY:SECRET_KEY, got {text!r}")
    return access, secret


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The serve options (shared by ``kling-testkit serve`` and ``python -m mockserver``)."""
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8000, help="port; 0 picks a free one (default 8000)")
    parser.add_argument(
        "--clock",
        choices=("system", "virtual"),
        default="system",
        help="system: real time; virtual: time moves only via POST /__mock__/clock/advance",
    )
    parser.add_argument(
        "--progression",
        type=_progression,
        default=Progression(),
        help="how tasks move: polls:N (default polls:1), seconds:T, manual, immediate",
    )
    parser.add_argument(
        "--outcome",
        type=_outcome,
        default=Outcome(),
        help="how tasks end: succeeded (default), failed[:content_policy|generation_failed|timeout] "
        "or refused:content_safety|platform_policy (the create itself is refused)",
    )
    parser.add_argument(
        "--key",
        dest="keys",
        action="append",
        metavar="KEY",
        help="accepted API key (repeatable; default sk-test; '*' accepts any)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="refuse unknown request fields instead of dropping them",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed for task ids and video seeds (reproducible runs)",
    )
    parser.add_argument(
        "--face",
        dest="faces",
        action="append",
        metavar="NAME",
        help="serve only this face (repeatable; default: every face: " + ", ".join(face_names()) + ")",
    )
    parser.add_argument(
        "--official-key",
        dest="key_pairs",
        action="append",
        type=_key_pair,
        metavar="AK:SK",
        help="access key and secret key whose HS256 JWTs Kling's own API face accepts "
        "(repeatable; default ak-test:sk-test-secret-key-for-kling-testkit)",
    )
    parser.add_argument(
        "--slots", type=int, default=None, help="concurrent unfinished tasks per account (default: the contract's)"
    )
    parser.add_argument(
        "--callback-allow",
        dest="callback_hosts",
        action="append",
        metavar="HOST",
        help="host callbacks may be POSTed to (repeatable; default: loopback only)",
    )
    parser.add_argument(
        "--tls", action="store_true", help="serve HTTPS with a throwaway CA; prints the CA bundle's path for clients"
    )
    parser.add_argument("--admin-token", default=None, help="require X-Mock-Admin-Token on /__mock__/ routes")
    parser.add_argument(
        "--public-url",
        default=None,
        metavar="URL",
        help="base URL of result links and the OpenAPI servers entry (default: the bound address)",
    )
    parser.add_argument(
        "--allowed-host",
        dest="allowed_hosts",
        action="append",
        default=[],
        metavar="NAME",
        help="host name admin requests may carry in Host besides loopback and the bound address (repeatable)",
    )
    parser.add_argument(
        "--shutdown-grace",
        type=float,
        default=SHUTDOWN_GRACE,
        metavar="SECONDS",
        help=f"on SIGTERM, let requests in flight finish for up to this long (default {SHUTDOWN_GRACE:g})",
    )
    parser.add_argument("--no-admin", action="store_true", help="do not serve the /__mock__/ admin API")
    parser.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"))


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()  # a busy port must not leak the socket (ResourceWarning in the caller's tests)
        raise
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, stopping as soon as it is asked to and exiting cleanly on a signal."""

    def __init__(
        self, config: uvicorn.Config, base_url: str, lines: Sequence[str] = (), *, grace: float = SHUTDOWN_GRACE
    ) -> None:
        super().__init__(config)
        self.base_url = base_url
        self.lines = lines
        self.grace = grace
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        #: a stop was asked for (a signal, or a test). Kept apart from uvicorn's should_exit
        #: until the main loop sees it: uvicorn skips shutdown (and leaves the listeners
        #: open) when should_exit is already set as startup returns
        self._stop = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await super().startup(sockets)
        if self.should_exit:  # startup failed; uvicorn logged why
            return
        print(f"kling-testkit fake at {self.base_url}", flush=True)
        for line in self.lines:
            print(f"  {line}", flush=True)
        print(
            f"  OpenAPI: {self.base_url}/openapi.json   admin: {self.base_url}/__mock__/",
            flush=True,
        )
        print("ready", flush=True)

    async def main_loop(self) -> None:
        # uvicorn sleeps 0.1 s between ticks; waiting on an event instead wakes at the signal.
        counter = 0
        should_exit = await self.on_tick(counter)
        while not (should_exit or self._stop):
            counter = (counter + 1) % 864_000
            assert self._wake is not None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)
            should_exit = await self.on_tick(counter)
        self.should_exit = True

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:  # noqa: ARG002 (signal handler signature)
        if (self._stop or self.should_exit) and sig == signal.SIGINT:
            self.force_exit = True
        self._stop = True
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # uvicorn re-raises a captured SIGTERM after its shutdown, so the process died of it
        # (exit status 143 for a CI script's `kill; wait`); a finished shutdown is a clean exit.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's own shutdown pauses 0.1 s and then polls every 0.1 s; an idle fake has
        # nothing to wait for, and requests in flight are waited for in short steps, for at most
        # the grace period: a client that stalls its upload or stops reading its response would
        # otherwise hold the process forever (its transport never drains).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        state = self.server_state
        for connection in list(state.connections):
            connection.shutdown()  # idle: closed now; busy: closed after its response
        while (state.connections or state.tasks) and not self.force_exit and loop.time() < deadline:
            await asyncio.sleep(0.005)
        for task in list(state.tasks):
            task.cancel()
        for connection in list(state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()  # unsent bytes are dropped: the grace period is over
        for server in self.servers:
            # A closed server finishes closing on the loop: ended first, uvloop reports the
            # listener as an unclosed resource (seen in a loaded run, whose server thread then
            # outlived its test). Bounded, as the connections it could wait for are aborted.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), timeout=1.0)


def describe_mounts(service: Service) -> list[str]:
    """One line per mounted face: its name, prefix and routes' first path."""
    lines = []
    for mount in service.mounts:
        face = service.faces[mount.face]
        paths = sorted({op.path for op in face.contract.operations.values() if op.auth})
        where = f"under {mount.prefix}" if mount.prefix else "at /"
        lines.append(f"face {mount.face} {where}: {', '.join(mount.prefix + p for p in paths[:3])}")
    return lines


def run(args: argparse.Namespace) -> int:
    """Start the server described by parsed ``args``; blocks until interrupted."""
    clock = VirtualClock() if args.clock == "virtual" else SystemClock()
    engine = Engine(clock=clock, seed=args.seed, progression=args.progression, outcome=args.outcome)
    try:
        service = Service(
            engine,
            faces=args.faces,
            keys=args.keys,
            key_pairs=dict(args.key_pairs) if args.key_pairs else None,
            strict=args.strict,
            slots=args.slots,
            callback_hosts=args.callback_hosts,
            admin=not args.no_admin,
            admin_token=args.admin_token,
            allowed_hosts=getattr(args, "allowed_hosts", ()),
            public_base_url=(getattr(args, "public_url", None) or "").rstrip("/") or None,
        )
        service.check_bind(args.host)
    except AdminExposed as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"kling-testkit serve: {exc}", file=sys.stderr)
        return 2
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        hint = ""
        if exc.errno == errno.EADDRINUSE:
            hint = "; another process listens there: pick a free port with --port 0 (the chosen port is printed)"
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}{hint}", file=sys.stderr)
        return 2
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    lines = describe_mounts(service)
    tls: dict[str, str] = {}
    scheme = "http"
    if args.tls:
        from mockserver.tls import make_tls

        files = make_tls([args.host])
        tls = {"ssl_certfile": str(files.cert), "ssl_keyfile": str(files.key)}
        scheme = "https"
        lines.append(f"TLS CA bundle: {files.ca_bundle} (e.g. NODE_EXTRA_CA_CERTS, SSL_CERT_FILE, REQUESTS_CA_BUNDLE)")
    base_url = f"{scheme}://{shown}:{port}"
    service.bound(base_url)
    config = uvicorn.Config(
        create_app(service),
        log_level=args.log_level,
        access_log=False,
        lifespan="off",
        server_header=False,
        **uvicorn_options(service),
        **tls,  # type: ignore[arg-type]
    )
    server = _Server(config, base_url, lines, grace=getattr(args, "shutdown_grace", SHUTDOWN_GRACE))
    worker = CallbackWorker(service)
    service.on_deliveries = worker.wake
    tune_gc_for_server()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()
        sock.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mockserver", description="Run the Kling v2.6 fake server.")
    add_arguments(parser)
    return run(parser.parse_args(argv))
