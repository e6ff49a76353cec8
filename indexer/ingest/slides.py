"""PowerPoint (.pptx) → one :class:`~indexer.types.Document`, one section per slide (python-pptx).

A slide's section has heading path ``("slide 3", "<slide title>")`` (just ``("slide 3",)`` when the slide has no
title), so every chunk knows its slide; its text is the other shapes' text in the slide's own order (groups
opened, tables as ``cell | cell`` rows), then the speaker notes. Slides without text are left out. The title is
the core-properties title, else the first slide's title, else the file stem. The zip is checked before parsing
(:func:`~indexer.ingest.limits.check_zip`).

Non-goals: text inside charts, SmartArt and embedded objects; legacy .ppt; slide masters and layouts' text.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from indexer.errors import SkipFile
from indexer.ingest.limits import ReadLimits, check_zip
from indexer.ingest.text import Outline, make_document, stem_title
from indexer.types import Document


def _read_pptx(data: bytes, path: Path, rel: str, limits: ReadLimits) -> list[Document]:
    from pptx import Presentation

    check_zip(data, "PPTX", limits.max_unzipped_bytes, limits.max_bytes)
    try:
        deck = Presentation(io.BytesIO(data))
        slides = list(deck.slides)
    except Exception as e:  # noqa: BLE001 - zipfile, lxml and python-pptx errors alike
        raise SkipFile(f"corrupt PPTX: {type(e).__name__}: {e}") from None
    outline: Outline = []
    titles: list[str] = []
    for number, slide in enumerate(slides, start=1):
        limits.deadline.check()
        title = _slide_title(slide)
        if title:
            titles.append(title)
        title_shape = slide.shapes.title
        title_id = title_shape.shape_id if title_shape is not None else None
        blocks = [_shape_text(shape) for shape in _shapes(slide) if shape.shape_id != title_id]
        blocks.append(_notes_text(slide))
        heading = (f"slide {number}", title) if title else (f"slide {number}",)
        outline.append((heading, "\n\n".join(b for b in blocks if b)))
    if not any(text for _, text in outline) and titles:  # a deck of bare titles
        outline = [((f"slide {n}",), t) for n, t in enumerate(titles, start=1)]
    title = (deck.core_properties.title or "").strip() or next(iter(titles), "") or stem_title(path)
    return [make_document(rel, title, outline, "pptx")]


def _slide_title(slide) -> str:
    shape = slide.shapes.title
    return _clean(shape.text_frame.text) if shape is not None and shape.has_text_frame else ""


def _shapes(slide) -> list:
    """The slide's shapes in document order, groups opened (without recursion: groups can nest deeply)."""
    from pptx.shapes.group import GroupShape

    out: list = []
    stack = [iter(slide.shapes)]
    while stack:
        shape = next(stack[-1], None)
        if shape is None:
            stack.pop()
        elif isinstance(shape, GroupShape):
            stack.append(iter(shape.shapes))
        else:
            out.append(shape)
    return out


def _shape_text(shape) -> str:
    if shape.has_text_frame:
        return _clean(shape.text_frame.text)
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = []
        for row in shape.table.rows:
            cells = [re.sub(r"\s+", " ", cell.text).strip() for cell in row.cells]
            if any(cells):
                rows.append(" | ".join(c for c in cells if c))
        return "\n".join(rows)
    return ""


def _notes_text(slide) -> str:
    if not slide.has_notes_slide:
        return ""
    frame = slide.notes_slide.notes_text_frame
    return _clean(frame.text) if frame is not None else ""


def _clean(text: str) -> str:
    """python-pptx writes a line break inside a paragraph as a vertical tab."""
    return text.replace("\v", "\n").replace("\r", "\n").strip()
