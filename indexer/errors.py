"""Errors with messages that name the problem and the fix. The CLI prints them without a traceback."""

from __future__ import annotations


class E5SearchError(Exception):
    """Base class for errors a user can act on."""


class ConfigError(E5SearchError, ValueError):
    """A configuration value is out of range or inconsistent."""


class IndexStateError(E5SearchError):
    """The index is missing, foreign, or was built with another model."""


class IndexBusyError(IndexStateError):
    """Another process (or another job in this one) is writing the index."""


class IndexDamagedError(IndexStateError):
    """A file of the index's current generation is missing or unreadable; ``e5search index --repair`` fixes it."""


class IndexingInterrupted(KeyboardInterrupt):
    """Ctrl-C during an indexing job; ``committed`` says whether the new generation had already been committed."""

    def __init__(self, committed: bool):
        super().__init__("committed" if committed else "not committed")
        self.committed = committed


class QueryError(E5SearchError, ValueError):
    """The query cannot be run (empty, too long, unknown language, ...)."""


class SkipFile(E5SearchError):
    """A file cannot be indexed; ``reason`` is recorded and shown in the summary."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class MissingExtra(E5SearchError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str):
        super().__init__(f"{package} is not installed: pip install 'e5search[{extra}]'")


class DatasetError(E5SearchError, ValueError):
    """A BEIR folder is missing a file or has a malformed line."""
