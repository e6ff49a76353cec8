"""Run the API with uvicorn: in the foreground (``e5search serve``) or on a thread (tests, benchmarks, programs
that embed it). One process: the index and its models are loaded once and shared by uvicorn's thread pool
(several uvicorn worker processes would each load them, and an indexing job's id would be known to one only).
"""

from __future__ import annotations

import logging
import threading
import time

import uvicorn

from serve.api import create_app
from serve.config import ServeConfig
from serve.jobs import Jobs
from serve.served import ServedIndex

logger = logging.getLogger(__name__)


def uvicorn_server(served: ServedIndex, config: ServeConfig, log_level: str = "warning") -> uvicorn.Server:
    app = create_app(served, config, Jobs(served))
    return uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level=log_level,
            access_log=log_level in ("info", "debug"),
            timeout_graceful_shutdown=5,
            server_header=False,
            lifespan="off",  # no start-up/shutdown hooks; with them a Ctrl-C was seen to log the cancelled lifespan task's traceback
        )
    )


def serve_forever(served: ServedIndex, config: ServeConfig, log_level: str = "warning") -> None:
    """Serve until Ctrl-C or SIGTERM: uvicorn finishes the requests in flight (up to 5 s), then returns here
    on Ctrl-C (it raises the signal again once stopped; that KeyboardInterrupt is the normal end)."""
    try:
        uvicorn_server(served, config, log_level).run()
    except KeyboardInterrupt:
        logger.info("stopped by Ctrl-C")
    finally:
        served.close()


class ServerThread:
    """The API on a daemon thread, for tests and benchmarks: ``with ServerThread(served) as url: ...``.

    ``port=0`` in the config (the default here) takes a free port; :attr:`url` names the one taken.
    """

    def __init__(self, served: ServedIndex, config: ServeConfig | None = None):
        self.config = config or ServeConfig(port=0)
        self.server = uvicorn_server(served, self.config)
        self.thread = threading.Thread(target=self.server.run, name="e5search-serve", daemon=True)
        self.url = ""

    def start(self, timeout: float = 30.0) -> str:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start on {self.config.host}:{self.config.port}")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def check_bindable(config: ServeConfig) -> None:
    """ConfigError naming the fix when ``host:port`` cannot be listened on (in use, not this machine's)."""
    import socket

    from indexer.errors import ConfigError

    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((config.host.strip("[]"), config.port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {config.host}:{config.port} ({exc.strerror or exc}): choose another --port, "
                "or a --host address of this machine"
            ) from None
