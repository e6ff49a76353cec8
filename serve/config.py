"""What ``e5search serve`` is started with: where it listens, the token, and the limits a request must keep.

A limit a request breaks is answered with a 4xx JSON body naming the limit and the fix, never a crash. The query
length limit is the index's own (``SearchConfig.max_query_chars``, checked by ``Index.search``), not a second one.
"""

from __future__ import annotations

from dataclasses import dataclass

from indexer.errors import ConfigError

TOKEN_ENV = "E5SEARCH_TOKEN"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
ANY_ADDRESS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class ServeConfig:
    """How the server listens and what it accepts.

    ``token``: when set, every route but ``/health`` (and the API's own description, ``/docs`` and
    ``/openapi.json``) needs ``Authorization: Bearer <token>``. A server that listens beyond loopback must have
    one: without it anyone on the network could search and index.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_body_bytes: int = (
        1_048_576  # 1 MiB: 256 queries of 2,000 ASCII characters fit (CJK takes 3 bytes each)
    )
    max_k: int = 1000
    max_queries: int = 256  # queries in one batch request

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port {self.port}: give a port between 1 and 65535 (0: any free port)")
        if self.token is not None and not self.token.strip():
            raise ConfigError(f"empty token: set {TOKEN_ENV} (or --token) to a secret, or leave it unset")
        if not self.token and not self.loopback:
            raise ConfigError(
                f"--host {self.host} without a token would let anyone on the network search and index: set "
                f"{TOKEN_ENV} to a secret (or pass --token), or leave --host at 127.0.0.1"
            )
        for name in ("max_body_bytes", "max_k", "max_queries"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: must be at least 1")

    @property
    def loopback(self) -> bool:
        return self.host.strip("[]").lower() in LOOPBACK_HOSTS

    @property
    def allowed_hosts(self) -> list[str]:
        """Host header names answered: loopback names and ``--host`` (so a web page elsewhere cannot reach a
        loopback server by DNS rebinding); any name when listening on every address (a token is required then)."""
        if self.host.strip("[]") in ANY_ADDRESS:
            return ["*"]
        names = dict.fromkeys([*LOOPBACK_HOSTS, "[::1]", self.host.strip("[]").lower()])
        return list(names)
