"""What the app lets a visitor reach on the server: which folders it reads and which Host names it answers.

Anyone who can open the app's port can use its pages, so the pages read and index only folders under the roots
``e5search app --allow-root DIR`` was started with (``$E5SEARCH_ALLOW_ROOTS``); with none, no page reads a new
folder. Paths are resolved (symlinks, ``..``) before they are compared, so a link out of a root is refused.

A browser page on another site can reach the app's loopback port through DNS rebinding (its own name resolving
to 127.0.0.1), but it still sends its own name in ``Host``: the app answers only loopback names and the
``--host`` it was started with (``$E5SEARCH_ALLOWED_HOSTS``). ``e5search app`` gives Streamlit the same list as
``server.allowedHosts``, which refuses the WebSocket before a page runs; :func:`host_allowed` checks it again
on every page run, for an app started with ``streamlit run`` directly.

Not a login: a visitor from an allowed host can use every page. Bind to loopback (the default) to keep it local.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from indexer.errors import ConfigError

ROOTS_ENV = "E5SEARCH_ALLOW_ROOTS"  # folders separated by os.pathsep
INDEX_ENV = "E5SEARCH_INDEX"  # the index ``e5search app --index DIR`` was started with
DEFAULT_INDEX = ".e5search/index"
HOSTS_ENV = "E5SEARCH_ALLOWED_HOSTS"  # names separated by commas
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
ALLOW_ROOT_FIX = "e5search app --allow-root DIR"


def allowed_roots() -> tuple[Path, ...]:
    """The folders the pages may read, resolved; () when the app was started without ``--allow-root``."""
    raw = os.environ.get(ROOTS_ENV, "")
    return tuple(Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p.strip())


def is_inside(path: Path, roots: Sequence[Path]) -> bool:
    """Whether ``path`` (resolved here, symlinks and ``..`` included) is one of ``roots`` (resolved, as
    :func:`allowed_roots` gives them) or below one."""
    resolved = path.expanduser().resolve()
    return any(resolved.is_relative_to(root) for root in roots)


def check_inside(path: Path, roots: Sequence[Path]) -> Path:
    """``path`` resolved, or ConfigError naming the fix when it lies outside every allowed root.

    >>> check_inside(Path("/etc"), [])
    Traceback (most recent call last):
    ...
    indexer.errors.ConfigError: /etc: the app reads no folders on the server; start it with e5search app --allow-root DIR
    """
    resolved = path.expanduser().resolve()
    if any(resolved.is_relative_to(root) for root in roots):
        return resolved
    if not roots:
        raise ConfigError(
            f"{resolved}: the app reads no folders on the server; start it with {ALLOW_ROOT_FIX}"
        )
    allowed = ", ".join(str(r) for r in roots)
    raise ConfigError(
        f"{resolved} is outside the allowed folders ({allowed}): start the app with {ALLOW_ROOT_FIX}"
    )


def app_index_dir() -> Path:
    """The index ``e5search app --index DIR`` was started with (``$E5SEARCH_INDEX``), resolved."""
    return Path(os.environ.get(INDEX_ENV) or DEFAULT_INDEX).expanduser().resolve()


def check_index(path: Path, roots: Sequence[Path]) -> Path:
    """``path`` resolved if the pages may use it as an index: the app's own ``--index``, or a folder under an
    allowed root; ConfigError naming the fix otherwise."""
    resolved = path.expanduser().resolve()
    return resolved if resolved == app_index_dir() else check_inside(resolved, roots)


def allowed_hosts() -> tuple[str, ...]:
    """Host names the app answers: loopback plus ``$E5SEARCH_ALLOWED_HOSTS`` (``e5search app --host``)."""
    extra = [h.strip().strip("[]").lower() for h in os.environ.get(HOSTS_ENV, "").split(",") if h.strip()]
    return tuple(dict.fromkeys([*LOOPBACK_HOSTS, *extra]))


def host_allowed(host_header: str | None, allowed: Sequence[str]) -> bool:
    """Whether a request's ``Host`` header names one of ``allowed`` (the port is ignored).

    None (no request behind the run, as under Streamlit's AppTest) is allowed: a browser always sends Host.

    >>> host_allowed("127.0.0.1:8501", LOOPBACK_HOSTS), host_allowed("evil.example:8501", LOOPBACK_HOSTS)
    (True, False)
    """
    if host_header is None:
        return True
    try:
        parts = urlsplit(f"//{host_header}")
        name = parts.hostname
        _ = parts.port  # raises on a port that is not a number
    except ValueError:
        return False
    if not name or parts.username is not None or parts.path or parts.query or parts.fragment:
        return False
    return name.rstrip(".") in allowed
