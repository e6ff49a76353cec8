"""SQLite metadata through SQLAlchemy: files, documents, chunks, the index manifest and skipped files.

A chunk's primary key *is* its FAISS id. ``sqlite_autoincrement`` makes SQLite never reuse an id after a delete,
so a stale vector can never point at a new chunk. The database runs in WAL mode so the app can read while an
indexing run holds its single write transaction.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from indexer.errors import IndexStateError

DB_NAME = "index.sqlite"


SCHEMA_VERSION = 1


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Base(DeclarativeBase):
    pass


class FileRow(Base):
    """One file under the indexed folder: what we saw on disk, and whether it was indexed or skipped."""

    __tablename__ = "files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String, unique=True, index=True)  # relative to the index's source root
    content_hash: Mapped[str] = mapped_column(String(64))
    mtime: Mapped[float] = mapped_column(Float)
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # "indexed" | "skipped"
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    indexed_at: Mapped[str] = mapped_column(String(32), default=utcnow)
    documents: Mapped[list[DocumentRow]] = relationship(
        back_populates="file", cascade="all, delete-orphan", passive_deletes=True
    )


class DocumentRow(Base):
    """A document: a whole file, or one record of a BEIR ``corpus.jsonl``."""

    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String, unique=True, index=True)
    external_id: Mapped[str | None] = mapped_column(String, nullable=True, index=True)
    title: Mapped[str] = mapped_column(Text)
    file_type: Mapped[str] = mapped_column(String(16), index=True)
    lang: Mapped[str] = mapped_column(String(8), index=True)
    n_chars: Mapped[int] = mapped_column(Integer)
    file: Mapped[FileRow] = relationship(back_populates="documents")
    chunks: Mapped[list[ChunkRow]] = relationship(
        back_populates="document",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ChunkRow.ordinal",
    )

    @property
    def key(self) -> str:
        """The id evaluation uses: the record's own id when it has one, else the path."""
        return self.external_id if self.external_id is not None else self.path


class ChunkRow(Base):
    __tablename__ = "chunks"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # == FAISS id
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    heading_path: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    lang: Mapped[str] = mapped_column(String(8), index=True)
    n_tokens: Mapped[int] = mapped_column(Integer)
    text_hash: Mapped[str] = mapped_column(String(32), index=True)  # hash of the embedded passage text
    document: Mapped[DocumentRow] = relationship(back_populates="chunks")

    @property
    def headings(self) -> tuple[str, ...]:
        return tuple(json.loads(self.heading_path))


class ManifestRow(Base):
    """Key/value pairs describing the index: model, dimension, configs, versions, generation."""

    __tablename__ = "manifest"
    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(Text)  # JSON


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # the driver must not open transactions on its own: SQLAlchemy's "begin" below does, for reads too, so all
    # the statements of one Session see one snapshot (pysqlite would run each SELECT in its own)
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=FULL")  # a commit is on disk when it returns (power loss included)
    cur.close()


def _begin(conn) -> None:
    conn.exec_driver_sql("BEGIN")


def open_engine(index_dir: Path, create: bool = False) -> Engine:
    """An engine on ``index_dir/index.sqlite``; ``create`` makes the tables if they are missing.

    Every Session is one SQLite transaction from its first statement on: a reader sees the manifest and the rows
    of one commit, however many statements its query takes (WAL lets it read while a writer writes).
    """
    engine = create_engine(f"sqlite:///{index_dir / DB_NAME}", future=True)
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _begin)
    if create:
        Base.metadata.create_all(engine)
    return engine


def read_manifest(session: Session) -> dict[str, Any]:
    return {row.key: json.loads(row.value) for row in session.scalars(select(ManifestRow))}


def read_index_manifest(index_dir: str | Path, complete: bool = True) -> dict[str, Any]:
    """The manifest of the index in ``index_dir``: the one reader behind search, indexing, the CLI and the app.

    With ``complete`` it raises :class:`IndexStateError` unless the index finished a run (has a generation);
    without, a folder that holds no index yet gives ``{}``. A file that is not an e5search database is refused
    in either case, never written to.

    >>> read_index_manifest(".e5search/sample")["generation"]  # doctest: +SKIP
    3
    """
    index_dir = Path(index_dir).expanduser()
    db = index_dir / DB_NAME
    if not db.exists():
        if not complete:
            return {}
        raise IndexStateError(
            f"no index at {index_dir} yet: index a folder into it with `e5search index FOLDER --index {index_dir}` "
            "(or on the app's Index page)"
        )
    if not _has_manifest_table(db):  # checked read-only: opening it our way would switch it to WAL mode
        raise IndexStateError(
            f"{db} is not an e5search index (no manifest table): give another --index folder"
        )
    engine = open_engine(index_dir)
    try:
        with Session(engine) as session:
            manifest = read_manifest(session)
    except DBAPIError as exc:
        raise IndexStateError(
            f"{db} is not a readable e5search index ({exc.orig}): give another --index folder"
        ) from exc
    finally:
        engine.dispose()
    if complete and not manifest.get("generation"):
        raise IndexStateError(
            f"the index at {index_dir} was never completed: run `e5search index` on its folder again"
        )
    return manifest


def _has_manifest_table(db: Path) -> bool:
    try:
        with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'manifest'")
            return found.fetchone() is not None
    except sqlite3.DatabaseError as exc:
        raise IndexStateError(
            f"{db} is not a readable e5search index ({exc}): give another --index folder"
        ) from None


def write_manifest(session: Session, values: dict[str, Any]) -> None:
    for key, value in values.items():
        session.merge(ManifestRow(key=key, value=json.dumps(value, ensure_ascii=False)))
