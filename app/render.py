"""Small pieces of HTML and text the pages show. Everything from an index or a document is escaped here.

Pages render these with ``st.html``, which does not interpret Markdown: a document's ``![x](http://...)`` or
``<script>`` stays text and loads nothing. Text from a user, a URL, a file or an error message that goes into an
element that *does* render Markdown (``st.error``, ``st.caption``, labels, pill options) goes through
:func:`md` first.
"""

from __future__ import annotations

import html
import re
from datetime import datetime

from app.compare import movement
from indexer.types import FusionWeights, Hit

CSS = """
<style>
.e5-hit {border: 1px solid rgba(128,128,128,.25); border-radius: .5rem; padding: .5rem .7rem; margin: .1rem 0;}
.e5-head {display: flex; gap: .45rem; align-items: baseline; font-size: .85rem; color: #666;}
.e5-rank {font-weight: 700; color: inherit; font-size: 1rem;}
.e5-title {font-weight: 600; margin-top: .15rem;}
.e5-path {font-family: monospace; font-size: .75rem; color: #777; word-break: break-all;}
.e5-snippet {font-size: .9rem; margin-top: .3rem; line-height: 1.45;}
.e5-page {font-weight: 600; color: #444; white-space: nowrap;}
.e5-lang {background: #e8eefc; color: #1f3d8a; border-radius: .6rem; padding: 0 .45rem; font-size: .75rem;}
.e5-move-up {color: #1a7f37; font-weight: 600;} .e5-move-down {color: #b42318; font-weight: 600;}
.e5-move-new {color: #8a5a00; font-weight: 600;} .e5-move-same {color: #888;}
mark.e5-lex {background: #ffe58a; padding: 0 .1rem; border-radius: .15rem;}
span.e5-sent {background: #dff3e4; border-bottom: 2px solid #5cb176;}
.e5-text {white-space: pre-wrap; font-size: .9rem; line-height: 1.5;}
.e5-neighbour {white-space: pre-wrap; font-size: .85rem; color: #555; border-left: 3px solid #ddd; padding-left: .5rem;}
</style>
"""

COLUMN_TITLES = {"bm25": "BM25", "dense": "Dense (E5)", "hybrid": "Hybrid"}
_STAGES = {
    "encode_query": "encode",
    "dense_search": "dense search",
    "bm25_search": "BM25 search",
    "fuse": "fuse",
    "rerank": "rerank",
    "hydrate": "fetch",
    "highlight": "highlight",
    "sentences": "best sentence",
}
_SPACES = re.compile(r"\s+")
# Every ASCII punctuation mark that can start Markdown, HTML, an autolink (<http://..>), a Streamlit directive
# (:red[..]) or LaTeX ($); CommonMark shows a backslash-escaped one as itself.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$@=^&])")
# GFM also links a bare URL or e-mail address found in the text *after* escapes are resolved, so escaping cannot
# stop that; an invisible WORD JOINER where the pattern needs "://", "www." or "x@" does.
_BARE_LINK = re.compile(r"(?i)(?=://)|(?<=www)(?=\.)|(?=@)")
WORD_JOINER = "\u2060"


def esc(text: object) -> str:
    """Escaped, with runs of whitespace folded to one space."""
    return html.escape(_SPACES.sub(" ", str(text)).strip())


def md(text: object) -> str:
    r"""``text`` for an element that renders Markdown (``st.error``, ``st.caption``, labels), so that it shows as
    typed and links or loads nothing: markup is backslash-escaped and bare URLs broken by an invisible joiner.

    >>> print(md("[x](http://evil.example) ![](www.evil.example/i.png)").replace(WORD_JOINER, "|"))
    \[x\]\(http|\://evil\.example\) \!\[\]\(www|\.evil\.example/i\.png\)
    """
    return _MARKDOWN.sub(r"\\\1", _BARE_LINK.sub(WORD_JOINER, str(text)))


def _move_html(label: str) -> str:
    if not label:
        return ""
    kind = {"▲": "up", "▼": "down", "n": "new", "=": "same"}[label[0]]
    title = "rank unchanged by reranking" if kind == "same" else "rank change from reranking"
    return f'<span class="e5-move-{kind}" title="{title}">{esc(label)}</span>'


def hit_card(hit: Hit, snippet_html: str, k: int) -> str:
    """One result: rank, rerank movement, score, language badge, title, path, page and heading path, snippet.

    ``snippet_html`` must already be escaped (see :func:`app.highlight.to_html`).
    """
    where = esc(hit.doc_path)
    if hit.page_label:  # the page (slide) right after the path, set apart, so it reads as a locator
        where += f' <span class="e5-page" title="page in the original file">{esc(hit.page_label)}</span>'
    if hit.section_path:
        where += " › " + " › ".join(esc(h) for h in hit.section_path)
    return (
        '<div class="e5-hit">'
        f'<div class="e5-head"><span class="e5-rank">{hit.rank}</span>'
        f"{_move_html(movement(hit.rank, hit.prev_rank, k))}"
        f'<span class="e5-score" title="score">{hit.score:.4f}</span>'
        f'<span class="e5-lang" title="language of this chunk">{esc(hit.lang)}</span></div>'
        f'<div class="e5-title" dir="auto">{esc(hit.title) or where}</div>'
        f'<div class="e5-path">{where}</div>'
        f'<div class="e5-snippet" dir="auto">{snippet_html}</div>'
        "</div>"
    )


def timing_line(timings_ms: dict[str, float]) -> str:
    """``encode 12 ms · dense search 1.2 ms · ... · total 40 ms`` (the total includes highlighting)."""

    def ms(v: float) -> str:
        return f"{v:.1f} ms" if v < 10 else f"{v:.0f} ms"

    parts = [f"{name} {ms(timings_ms[key])}" for key, name in _STAGES.items() if key in timings_ms]
    total = timings_ms.get("total", 0.0) + timings_ms.get("highlight", 0.0) + timings_ms.get("sentences", 0.0)
    return " · ".join([*parts, f"total {ms(total)}"])


def fusion_line(fusion: FusionWeights) -> str:
    """The hybrid column's weights for this query: ``BM25 0.12 · dense 0.88 (weighted for this query)``."""
    how = "plain RRF" if fusion.method == "rrf" else "weighted for this query"
    return f"BM25 {fusion.bm25:.2f} · dense {fusion.dense:.2f} ({how})"


def text_block(text: str, css_class: str = "e5-text") -> str:
    """A chunk's full text, escaped, line breaks kept."""
    return f'<div class="{css_class}" dir="auto">{html.escape(text)}</div>'


def timestamp(seconds: float) -> str:
    """A file's modification time, in the server's local time."""
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")


def megabytes(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.2f} MB" if n_bytes >= 10_000 else f"{n_bytes / 1e3:.1f} kB"
