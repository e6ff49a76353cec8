"""Snippets as escaped HTML, with the query's lexical matches and the best-matching sentence highlighted.

Every character a document contributes goes through :func:`html.escape`; the only markup is ours (``<mark>`` for
a lexical match, ``<span class="e5-sent">`` for the sentence closest to the query). A document that contains
``<script>`` therefore shows the text ``<script>``.

Lexical matching mirrors the BM25 analyser: a word is highlighted when its analysed term is one of the query's
terms; runs of CJK / Thai script are compared as character bigrams, as BM25 indexes them.

Non-goals: phrase highlighting, and exact agreement with a non-default analyser configuration.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import regex

from indexer.ingest.chunking import sentence_starts

Span = tuple[int, int]  # [start, end) character offsets

# The scripts BM25 indexes as character bigrams (see indexer.retrieval.bm25); kept in step by tests/app/test_highlight.py.
_NGRAM_SCRIPTS = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\u3005\u30fc"
_TOKEN = regex.compile(rf"[{_NGRAM_SCRIPTS}]+|[^\W{_NGRAM_SCRIPTS}]+(?:['\u2019][^\W{_NGRAM_SCRIPTS}]+)*")
_NGRAM_RUN = regex.compile(rf"[{_NGRAM_SCRIPTS}]")
_SPACES = regex.compile(r"\s+")
_LINE_BREAK = regex.compile(r"\n")


@dataclass(frozen=True)
class Snippet:
    """What to show of a chunk: a window of its text and the spans to highlight (offsets into ``text``)."""

    text: str
    window: Span
    lexical: tuple[Span, ...] = ()
    sentence: Span | None = None


def _merge(spans: Sequence[Span]) -> list[Span]:
    out: list[Span] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _bigram_spans(run: str, offset: int, wanted: Collection[str]) -> list[Span]:
    folded = unicodedata.normalize("NFKC", run).casefold()
    if len(folded) != len(run):  # normalisation changed the length: offsets would drift, compare raw text
        folded = run
    if len(run) == 1:
        return [(offset, offset + 1)] if folded in wanted else []
    return [(offset + i, offset + i + 2) for i in range(len(run) - 1) if folded[i : i + 2] in wanted]


def lexical_spans(text: str, terms: Collection[str], analyze: Callable[[str], list[str]]) -> list[Span]:
    """Spans of the words of ``text`` whose analysed terms meet ``terms``.

    ``analyze`` turns one word into index terms (the BM25 analyser in the chunk's language).

    >>> lexical_spans("Cats purr; a dog barks.", {"cat", "bark"}, lambda w: [w.lower().rstrip("s")])
    [(0, 4), (17, 22)]
    """
    wanted = set(terms)
    if not wanted:
        return []
    spans: list[Span] = []
    for m in _TOKEN.finditer(text):
        word = m.group()
        if _NGRAM_RUN.match(word):
            spans.extend(_bigram_spans(word, m.start(), wanted))
        elif any(t in wanted for t in analyze(word)):
            spans.append(m.span())
    return _merge(spans)


def sentence_spans(text: str) -> list[Span]:
    """Sentences of ``text`` (as the chunker finds them, and lines) as spans, trimmed, empty ones dropped.

    >>> sentence_spans("One. Two!\\n三。四")
    [(0, 4), (5, 9), (10, 12), (12, 13)]
    """
    cuts = sorted(set(sentence_starts(text)) | {m.end() for m in _LINE_BREAK.finditer(text)})
    out = []
    for s, e in zip([0, *cuts], [*cuts, len(text)], strict=True):
        piece = text[s:e]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        if e - trail > s + lead:
            out.append((s + lead, e - trail))
    return out


def window(n_chars: int, focus: Span | None, width: int) -> Span:
    """A ``width``-character window of a text of ``n_chars`` that shows ``focus`` (or the start)."""
    if n_chars <= width:
        return 0, n_chars
    if focus is None:
        return 0, width
    start = max(0, min(focus[0] - width // 5, n_chars - width))
    return start, start + width


def make_snippet(
    text: str, lexical: Sequence[Span] = (), sentence: Span | None = None, width: int = 360
) -> Snippet:
    """A snippet centred on the best sentence, else on the first lexical match, else the start."""
    focus = sentence if sentence is not None else (lexical[0] if lexical else None)
    return Snippet(text, window(len(text), focus, width), tuple(lexical), sentence)


def _runs(snippet: Snippet) -> list[tuple[str, bool, bool]]:
    """The window cut into runs of (text, is lexical match, is in the best sentence)."""
    start, end = snippet.window
    lex = [False] * (end - start)
    for s, e in snippet.lexical:
        for i in range(max(s, start), min(e, end)):
            lex[i - start] = True
    s_lo, s_hi = snippet.sentence if snippet.sentence is not None else (0, 0)
    runs: list[tuple[str, bool, bool]] = []
    run_start = start
    for i in range(start, end + 1):
        if i == end or (
            i > run_start
            and (lex[i - start], s_lo <= i < s_hi) != (lex[run_start - start], s_lo <= run_start < s_hi)
        ):
            if i > run_start:
                runs.append((snippet.text[run_start:i], lex[run_start - start], s_lo <= run_start < s_hi))
            run_start = i
    return runs


def to_html(snippet: Snippet) -> str:
    """The snippet as HTML: escaped text, ``<mark class="e5-lex">`` and ``<span class="e5-sent">``.

    >>> to_html(make_snippet("a <b> c", lexical=[(2, 5)]))
    'a <mark class="e5-lex">&lt;b&gt;</mark> c'
    """
    parts = []
    for text, lex, sent in _runs(snippet):
        piece = html.escape(_SPACES.sub(" ", text))
        if lex:
            piece = f'<mark class="e5-lex">{piece}</mark>'
        if sent:
            piece = f'<span class="e5-sent">{piece}</span>'
        parts.append(piece)
    start, end = snippet.window
    prefix = "… " if start > 0 else ""
    suffix = " …" if end < len(snippet.text) else ""
    return prefix + "".join(parts) + suffix
