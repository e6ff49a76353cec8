"""Excel workbooks (.xlsx, .xlsm) → one :class:`~indexer.types.Document`, one section per sheet (openpyxl).

A sheet's section has heading path ``("<sheet name>",)``. When its first row with text looks like a header (two
or more cells, all text, none repeated), every later row becomes a line ``header: value; header: value`` (empty
cells left out), so a chunk cut from the middle of a long table still says what each value is; otherwise rows
are ``value | value`` lines. Values are what Excel last computed (formulas are not evaluated); whole floats
drop their ``.0``, dates print as ISO dates.

Cost: the workbook is read in openpyxl's read-only (streaming) mode after :func:`~indexer.ingest.limits.check_zip`,
with the sheet's declared dimensions ignored (a forged ``A1:XFD1048576`` would pad every row to 16,384 cells);
at most :data:`~indexer.ingest.limits.MAX_SHEET_ROWS` rows per sheet and
:data:`~indexer.ingest.limits.MAX_WORKBOOK_CELLS` cells per workbook are read, the rest left out with a warning.

Non-goals: legacy .xls, charts, comments, hidden-sheet policies, evaluating formulas.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
from collections.abc import Iterable
from pathlib import Path

from indexer.errors import SkipFile
from indexer.ingest import limits as caps
from indexer.ingest.limits import Deadline, ReadLimits, check_zip
from indexer.ingest.text import Outline, make_document, stem_title
from indexer.types import Document

logger = logging.getLogger(__name__)


def _read_xlsx(data: bytes, path: Path, rel: str, limits: ReadLimits) -> list[Document]:
    from openpyxl import load_workbook

    check_zip(data, "XLSX", limits.max_unzipped_bytes, limits.max_bytes)
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:  # noqa: BLE001 - zipfile, XML and openpyxl errors alike
        raise SkipFile(f"corrupt XLSX: {type(e).__name__}: {e}") from None
    try:
        outline: Outline = []
        budget = _Budget(caps.MAX_WORKBOOK_CELLS, rel)
        for sheet in book.worksheets:
            sheet.reset_dimensions()  # rows as stored, not padded to the declared size
            lines = _sheet_lines(sheet.iter_rows(values_only=True), limits.deadline, budget, sheet.title)
            outline.append(((sheet.title,), "\n".join(lines)))
        title = (book.properties.title or "").strip() if book.properties else ""
    finally:
        book.close()
    return [make_document(rel, title or stem_title(path), outline, "xlsx")]


class _Budget:
    """Cells left for the workbook; warns once when it runs out."""

    def __init__(self, cells: int, rel: str) -> None:
        self.cells, self.rel, self.warned = cells, rel, False

    def take(self, n: int, sheet: str) -> bool:
        self.cells -= n
        if self.cells >= 0:
            return True
        if not self.warned:
            logger.warning(
                "%s: over %s cells; sheet %r and later sheets are cut there",
                self.rel,
                caps.MAX_WORKBOOK_CELLS,
                sheet,
            )
            self.warned = True
        return False


def _sheet_lines(rows: Iterable[tuple], deadline: Deadline, budget: _Budget, sheet: str) -> list[str]:
    """A sheet's rows → text lines: ``header: value; ...`` under a header row, else ``value | value``."""
    header: list[str] | None = None
    lines: list[str] = []
    for number, row in enumerate(rows):
        if number % 100 == 0:
            deadline.check()
        cells = [_cell_text(v) for v in row]
        filled = sum(1 for c in cells if c)
        if not filled:
            continue
        if not budget.take(filled, sheet):
            break
        if header is None and not lines and _looks_like_header(row, cells):
            header = cells
            continue
        lines.append(_row_text(cells, header))
        if len(lines) >= caps.MAX_SHEET_ROWS:
            logger.warning("%s: sheet %r cut at %s rows", budget.rel, sheet, caps.MAX_SHEET_ROWS)
            break
    if header is not None and not lines:  # a header alone is still the sheet's text
        lines.append(" | ".join(c for c in header if c))
    return lines


def _looks_like_header(row: tuple, cells: list[str]) -> bool:
    names = [c for c in cells if c]
    texts = all(isinstance(v, str) for v in row if v is not None and str(v).strip())
    return len(names) >= 2 and texts and len(set(names)) == len(names)


def _row_text(cells: list[str], header: list[str] | None) -> str:
    if header is None:
        return " | ".join(c for c in cells if c)
    parts = []
    for i, value in enumerate(cells):
        if value:
            name = header[i] if i < len(header) and header[i] else _column_name(i)
            parts.append(f"{name}: {value}")
    return "; ".join(parts)


def _column_name(i: int) -> str:
    """0 → ``"A"``, 26 → ``"AA"``: Excel's letters, for a value under no header."""
    name = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        name = chr(ord("A") + r) + name
    return name


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return re.sub(r"\s+", " ", str(value)).strip()
