"""The page's state in its URL, so a search can be shared: ``?q=...&k=20&rerank=1&lang=de``.

:func:`to_params` writes only what differs from the defaults; :func:`from_params` reads any URL, ignoring values
it cannot use (a hand-edited ``k=abc`` falls back to the default rather than breaking the page).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

Page = Literal["search", "index", "evaluate"]
PAGES: tuple[str, ...] = get_args(Page)
K_CHOICES: tuple[int, ...] = (3, 5, 10, 20, 50)


@dataclass(frozen=True)
class PageState:
    """What the URL records: the page, the query and the search settings, and the hit opened."""

    page: Page = "search"
    query: str = ""
    k: int = 10
    rerank: bool | None = None  # None: the default, on when a reranker is present; else rerank=1 / 0
    lang: str | None = None
    file_type: str | None = None
    path_prefix: str | None = None
    opened: int | None = None  # chunk id of the hit shown in full

    def __post_init__(self) -> None:
        if self.page not in PAGES:
            raise ValueError(f"page={self.page!r}: must be one of {', '.join(PAGES)}")
        if self.k not in K_CHOICES:
            raise ValueError(f"k={self.k}: must be one of {K_CHOICES}")


_KEYS = {
    "page": "page",
    "query": "q",
    "k": "k",
    "rerank": "rerank",
    "lang": "lang",
    "file_type": "type",
    "path_prefix": "prefix",
    "opened": "open",
}


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def from_params(params: Mapping[str, str]) -> PageState:
    """The state a URL's query parameters describe; unusable values fall back to the defaults.

    >>> from_params({"q": "kaffee", "k": "20", "rerank": "1", "k2": "x"})
    PageState(page='search', query='kaffee', k=20, rerank=True, lang=None, file_type=None, path_prefix=None, opened=None)
    """
    get = {field: params.get(key) for field, key in _KEYS.items()}
    values: dict = {}
    if get["page"] in PAGES:
        values["page"] = get["page"]
    if get["query"]:
        values["query"] = get["query"]
    k = _int(get["k"] or "")
    if k in K_CHOICES:
        values["k"] = k
    if get["rerank"] in ("1", "true", "on", "0", "false", "off"):
        values["rerank"] = get["rerank"] in ("1", "true", "on")
    for field in ("lang", "file_type", "path_prefix"):
        if get[field]:
            values[field] = get[field]
    opened = _int(get["opened"] or "")
    if opened is not None and opened >= 0:
        values["opened"] = opened
    return PageState(**values)


def to_params(state: PageState) -> dict[str, str]:
    """Query parameters for ``state``, leaving out the defaults.

    >>> to_params(PageState(query="Wie entsteht Kaffee?", rerank=False))
    {'q': 'Wie entsteht Kaffee?', 'rerank': '0'}
    """
    default = PageState()
    out: dict[str, str] = {}
    for field in dataclasses.fields(PageState):
        value = getattr(state, field.name)
        if value == getattr(default, field.name):
            continue
        out[_KEYS[field.name]] = "1" if value is True else "0" if value is False else str(value)
    return out
