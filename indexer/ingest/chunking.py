"""Tokenizer-aware chunking of a :class:`~indexer.types.Document` into :class:`~indexer.types.ChunkDraft`.

Sizes are counted in the embedding model's own tokens (a transformers *fast* tokenizer: offsets are needed), so a
chunk never exceeds ``min(config.chunk_size, max_tokens)`` tokens when it is tokenized on its own, which is
what the encoder will do. ``max_tokens`` is the model's budget for the body: the caller has already taken out
the special tokens, the ``passage: `` prompt and the header (at most ``config.max_title_tokens``).

How a section is cut, from each chunk's start:

1. Chunks never cross sections, so every chunk has exactly one heading path.
2. Boundaries are ranked paragraph (blank line) > sentence > line > word (whitespace, CJK clause commas) > token.
   A chunk ends at the best-ranked kind of boundary at which at least one unit fits, packed greedily to the
   farthest such boundary that fits. A paragraph that fits is therefore never cut, and a trailing fragment
   joins the previous chunk whenever it fits there. A unit too long for any chunk is cut anyway, so its first
   pieces (at the next rank down) fill the room left in the chunk before it: a title line or short paragraph
   before a long one is not a chunk of its own.
3. Overlap: the next chunk starts with the trailing *sentences* of the previous one, at most
   ``config.chunk_overlap`` tokens and never the whole previous chunk. Boundary rank wins over overlap: if
   the overlap would force a worse cut, it is shortened or dropped.

Sentence ends (:func:`sentence_starts`): ``. ! ? …`` followed by whitespace and not by a lower-case letter,
Arabic ``؟ ۔``, Devanagari ``। ॥`` and CJK ``。！？`` (no space needed after those).

Embedded text (:func:`passage_text`) follows E5's BEIR convention ``title + " " + text``; with headings the
header is ``"Title > Heading > Subheading"`` (a first heading equal to the title is not repeated) and is cut to
``max_title_tokens`` tokens from the end. No title and no headings: the text alone.

Non-goals: semantic (embedding-based) splitting, token-exact overlap, layout-aware PDF chunking.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from indexer.config import ChunkConfig
from indexer.errors import ConfigError
from indexer.ingest.limits import Deadline
from indexer.tokens import count_tokens
from indexer.types import ChunkDraft, Document

PARAGRAPH, SENTENCE, LINE, WORD, TOKEN = 4, 3, 2, 1, 0


_LEVELS = (PARAGRAPH, SENTENCE, LINE, WORD, TOKEN)


_MIN_BODY_TOKENS = 4  # one token cut out of a word can grow to 2-3 when re-tokenized alone


_MAX_WINDOW_CHARS = 200_000  # longer sections are tokenized in windows cut at paragraph (or line) breaks


_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


_LINE_BREAK = re.compile(r"\n\s*")


_WORD_BREAK = re.compile(r"\s+|[，、；：،؛]")


_SENTENCE_END = re.compile(
    # Latin, Arabic and Devanagari stops need whitespace after them. A match is only tried where a run of stops
    # starts (the look-behind): tried inside the run too, 200k dots took minutes (quadratic backtracking)
    r"(?<![.!?…؟۔।॥])[.!?…؟۔।॥]+[\"'”’»)\]]*\s+"
    r"|[。！？｡]+[」』”’）)]*\s*"  # CJK stops need none
)


def sentence_starts(text: str) -> list[int]:
    """Offsets where a new sentence starts (0 excluded), for any of the scripts listed in the module doc.

    >>> sentence_starts("Hi there. How are you? 你好。再见！")
    [10, 23, 26]
    """
    starts = []
    for m in _SENTENCE_END.finditer(text):
        pos = m.end()
        if pos < len(text) and not text[pos].islower():  # "e.g. the", "Dr. med. vet." are not sentence ends
            starts.append(pos)
    return starts


@dataclass(frozen=True)
class _Chunk:
    start: int
    end: int  # exclusive boundary: where the next unit starts (so it includes trailing whitespace)
    text: str  # text[start:end].rstrip()
    n_tokens: int


class _SectionCutter:
    """Cuts one stretch of text. Offsets are local; token counts come from one offsets-mapping pass."""

    def __init__(self, text: str, tokenizer, size: int, overlap: int):
        self.text, self.tokenizer, self.size, self.overlap = text, tokenizer, size, overlap
        enc = tokenizer(
            text,
            add_special_tokens=False,
            return_offsets_mapping=True,
            return_attention_mask=False,
            verbose=False,
        )
        self.token_starts = sorted(self._visible_start(s, e) for s, e in enc["offset_mapping"])
        self.levels = self._boundary_levels()
        # candidates[level]: sorted positions where a chunk may end if it ends at a boundary of >= level
        self.candidates = {
            lv: sorted({p for p, plv in self.levels.items() if plv >= lv} | {len(text)}) for lv in _LEVELS
        }

    def _visible_start(self, start: int, end: int) -> int:
        """SentencePiece offsets include the space before a word (``"▁world"`` → (5, 11)); count from the word."""
        while start < end - 1 and self.text[start].isspace():
            start += 1
        return start

    def _boundary_levels(self) -> dict[int, int]:
        text, levels = self.text, {}
        for pos in self.token_starts:
            levels[pos] = TOKEN
        for level, positions in (
            (WORD, [m.end() for m in _WORD_BREAK.finditer(text)]),
            (LINE, [m.end() for m in _LINE_BREAK.finditer(text)]),
            (SENTENCE, sentence_starts(text)),
            (PARAGRAPH, [m.end() for m in _PARAGRAPH_BREAK.finditer(text)]),
        ):
            for pos in positions:
                if 0 < pos < len(text):
                    levels[pos] = level
        return levels

    def approx_tokens(self, start: int, end: int) -> int:
        return bisect_left(self.token_starts, end) - bisect_left(self.token_starts, start)

    def exact_tokens(self, text: str) -> int:
        return count_tokens(self.tokenizer, [text])[0]

    def cut(self, deadline: Deadline) -> list[_Chunk]:
        chunks = [self._next_chunk([0], 0)]
        while chunks[-1].end < len(self.text):
            deadline.check()
            prev = chunks[-1]
            chunks.append(self._next_chunk(self._overlap_starts(prev) + [prev.end], prev.end))
        return chunks

    def _next_chunk(self, starts: list[int], must_pass: int) -> _Chunk:
        """The chunk at the best boundary rank; among equals, the earliest start (the longest overlap)."""
        for i, level in enumerate(_LEVELS):
            for start in starts:
                chunk = self._fit(start, must_pass, level)
                if chunk is not None:
                    return self._fill(chunk, start, _LEVELS[i:])
        raise AssertionError(f"no chunk fits at offset {must_pass}: size={self.size}")

    def _fill(self, chunk: _Chunk, start: int, levels: tuple[int, ...]) -> _Chunk:
        """Rule 2's room-filling: when the unit after ``chunk`` (at the rank it ended on) is too long for any
        chunk, it will be cut anyway, so its first pieces at the next rank down fill this chunk's free room.
        Without this a title line before a long paragraph was a chunk of its own."""
        for level, finer in zip(levels, levels[1:]):
            cands = self.candidates[level]
            after = cands[bisect_right(cands, chunk.end)] if chunk.end < len(self.text) else chunk.end
            if chunk.end >= len(self.text) or self.approx_tokens(chunk.end, after) <= self.size:
                return chunk  # the next unit fits a chunk of its own: it is not cut
            chunk = self._fit(start, chunk.end, finer) or chunk
        return chunk

    def _fit(self, start: int, must_pass: int, level: int) -> _Chunk | None:
        """The farthest end of rank >= level beyond ``must_pass`` whose chunk fits, or None."""
        cands = self.candidates[level]
        lo = bisect_right(cands, must_pass)
        a, b = lo, len(cands)  # binary search: cands[lo:a] fit by the offsets count, cands[a:] don't
        while a < b:
            mid = (a + b) // 2
            if self.approx_tokens(start, cands[mid]) <= self.size:
                a = mid + 1
            else:
                b = mid
        for i in range(a - 1, lo - 1, -1):  # re-tokenizing alone can differ by a token or two: check exactly
            text = self.text[start : cands[i]].rstrip()
            n = self.exact_tokens(text)
            if n <= self.size and text:
                return _Chunk(start, cands[i], text, n)
        return None

    def _overlap_starts(self, prev: _Chunk) -> list[int]:
        """Sentence starts inside ``prev`` whose tail fits in the overlap budget, longest tail first."""
        if self.overlap <= 0:
            return []
        cands = self.candidates[SENTENCE]
        inside = cands[bisect_right(cands, prev.start) : bisect_left(cands, prev.end)]
        fitting = [p for p in inside if self.approx_tokens(p, prev.end) <= self.overlap]
        while fitting and self.exact_tokens(self.text[fitting[0] : prev.end].rstrip()) > self.overlap:
            fitting.pop(0)
        return fitting


def _windows(text: str) -> list[tuple[int, str]]:
    """Split very long text at paragraph (else line, else word) breaks into pieces of at most ~200k chars."""
    pieces, start = [], 0
    while len(text) - start > _MAX_WINDOW_CHARS:
        limit = start + _MAX_WINDOW_CHARS
        cut = None
        for pattern in (_PARAGRAPH_BREAK, _LINE_BREAK, _WORD_BREAK):
            ends = [m.end() for m in pattern.finditer(text, start + _MAX_WINDOW_CHARS // 2, limit)]
            if ends:
                cut = ends[-1]
                break
        cut = cut or limit
        pieces.append((start, text[start:cut]))
        start = cut
    pieces.append((start, text[start:]))
    return pieces


def chunk_document(
    doc: Document, tokenizer, config: ChunkConfig, max_tokens: int, deadline: Deadline | None = None
) -> list[ChunkDraft]:
    """Cut a document into chunks of at most ``min(config.chunk_size, max_tokens)`` tokens.

    Args:
        doc: the document; chunk offsets refer to ``doc.text``.
        tokenizer: a transformers fast tokenizer (offsets mapping needed).
        config: chunk size and overlap in tokens.
        max_tokens: the model's budget for a chunk body.
        deadline: the file's time budget, checked between chunks (SkipFile when spent); default none.

    Returns:
        Chunks in document order, with ``chunk.text == doc.text[chunk.start:chunk.end]``.
    """
    size = min(config.chunk_size, max_tokens)
    if size < _MIN_BODY_TOKENS:
        raise ConfigError(
            f"max_tokens={max_tokens}: leaves no room for text; it must be >= {_MIN_BODY_TOKENS} "
            "(use a model with a longer max length or a smaller max_title_tokens)"
        )
    overlap = min(config.chunk_overlap, size // 2)
    deadline = deadline or Deadline(None)
    drafts: list[ChunkDraft] = []
    for section in doc.sections:
        for offset, window in _windows(section.text):
            lead = len(window) - len(window.lstrip())
            if not window.strip():
                continue
            deadline.check()
            cutter = _SectionCutter(window[lead:], tokenizer, size, overlap)
            for c in cutter.cut(deadline):
                start = section.start + offset + lead + c.start
                drafts.append(
                    ChunkDraft(
                        text=c.text,
                        heading_path=section.heading_path,
                        start=start,
                        end=start + len(c.text),
                        n_tokens=c.n_tokens,
                    )
                )
    return drafts


def _truncate_tokens(text: str, tokenizer, max_tokens: int) -> str:
    if max_tokens <= 0:
        return ""
    offsets = tokenizer(
        text,
        add_special_tokens=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
        verbose=False,
    )["offset_mapping"]
    if len(offsets) <= max_tokens:
        return text
    keep = max_tokens
    while keep > 0:
        cut = text[: offsets[keep - 1][1]].rstrip(" >")
        if count_tokens(tokenizer, [cut])[0] <= max_tokens:
            return cut
        keep -= 1
    return ""


def header_text(
    title: str, heading_path: tuple[str, ...], tokenizer=None, max_tokens: int | None = None
) -> str:
    """``"Title > Heading > Subheading"``, cut to ``max_tokens`` tokens when a tokenizer is given.

    >>> header_text("Coffee", ("Coffee", "Roasting"))
    'Coffee > Roasting'
    """
    path = [h.strip() for h in heading_path if h.strip()]
    title = title.strip()
    if path and title and path[0].casefold() == title.casefold():
        path = path[1:]
    header = " > ".join([title, *path] if title else path)
    if tokenizer is not None and max_tokens is not None:
        header = _truncate_tokens(header, tokenizer, max_tokens)
    return header


def passage_text(
    title: str, heading_path: tuple[str, ...], text: str, tokenizer=None, max_header_tokens: int | None = None
) -> str:
    """The text that gets embedded (without the ``passage: `` prompt, which the encoder adds).

    >>> passage_text("Coffee", ("Roasting",), "Beans turn brown.")
    'Coffee > Roasting Beans turn brown.'
    """
    header = header_text(title, heading_path, tokenizer, max_header_tokens)
    return f"{header} {text}" if header else text
