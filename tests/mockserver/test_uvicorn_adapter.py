"""uvicorn still calls the hooks ``mockserver/_uvicorn.py`` overrides, with the same arguments.

Were a uvicorn release to stop calling ``main_loop`` or ``shutdown`` (or rename what they use),
the live server would still work but fall back to uvicorn's ticking loop and graceful pause, or
break at stop; these tests notice it without timing anything and name the hook.
"""

from __future__ import annotations

import inspect
import socket
import threading
from typing import Any

import httpx
import uvicorn

from mockserver import create_app
from mockserver._uvicorn import ThreadServer
from mockserver.serve import bind

BROKEN = "uvicorn {version} changed what mockserver/_uvicorn.py relies on: {what}"


def _broken(what: str) -> str:
    return BROKEN.format(version=uvicorn.__version__, what=what)


def test_the_overridden_hooks_keep_their_signatures() -> None:
    for name, parameters in {
        "startup": ["self", "sockets"],
        "main_loop": ["self"],
        "on_tick": ["self", "counter"],
        "shutdown": ["self", "sockets"],
    }.items():
        hook = getattr(uvicorn.Server, name, None)
        assert hook is not None, _broken(f"Server.{name} is gone")
        assert list(inspect.signature(hook).parameters) == parameters, _broken(f"Server.{name} takes other arguments")


class _Recording(ThreadServer):
    def __init__(self, config: uvicorn.Config) -> None:
        self.calls: list[str] = []
        super().__init__(config, on_ready=lambda: self.calls.append("on_ready"))

    async def startup(self, sockets: list[Any] | None = None) -> None:
        self.calls.append("startup")
        await super().startup(sockets)

    async def main_loop(self) -> None:
        self.calls.append("main_loop")
        await super().main_loop()

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        self.calls.append("shutdown")
        # What the override uses, checked where it runs:
        assert isinstance(self.servers, list), _broken("Server.servers is not a list of servers")
        assert hasattr(self.server_state, "connections"), _broken("Server.server_state.connections is gone")
        assert hasattr(self.server_state, "tasks"), _broken("Server.server_state.tasks is gone")
        await super().shutdown(sockets)


def test_a_served_request_goes_through_startup_main_loop_and_shutdown_once_each() -> None:
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(), log_config=None, lifespan="off", access_log=False)
    server = _Recording(config)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:
            errors.append(exc)
        finally:
            server.ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    server.ready.wait()
    assert server.started, (errors, _broken("Server.startup no longer sets Server.started"))
    assert httpx.get(f"http://127.0.0.1:{port}/openapi.json").status_code == 200
    server.request_exit()
    thread.join()
    assert not errors, errors
    assert server.calls == ["startup", "on_ready", "main_loop", "shutdown"], _broken(
        f"Server.run called {server.calls} (expected startup, main_loop, shutdown once each)"
    )
    with socket.socket() as probe:  # the listening socket is closed: nothing accepts any more
        assert probe.connect_ex(("127.0.0.1", port)) != 0
