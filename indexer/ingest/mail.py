"""E-mail: one message (.eml) or a mailbox (.mbox) → Documents (stdlib :mod:`email`).

A message's title is its subject (else, for a file, the file stem; in a mailbox, ``"<box> message <n>"``). Its first
section holds ``From``, ``To``, ``Cc``, ``Date`` and the attachments' names, so a search for a person or a date
finds the message; then the body: the text/plain part when there is one, else the text/html part read by
:func:`~indexer.ingest.markup.html_outline` (its headings become heading paths). Headers are decoded
(RFC 2047 words, any charset); a part whose charset Python does not know is decoded as a text file would be.

A mailbox gives one Document per message, stored as ``"rel/box.mbox#<n>"`` (``n`` from 1, in file order) like a
BEIR record, so :class:`indexer.build.scan._Owners` guards the same names. Unlike a BEIR record it has no
``external_id``: a message number is not an id of the message's own and repeats across mailboxes, so its key is
its path. Messages are split the way :class:`mailbox.mbox` splits them (a line starting ``From `` opens one),
from the bytes already read, since :class:`mailbox.mbox` would open the file again for writing; mboxrd's
``>From`` escapes are undone. A message without text is left out; a mailbox with none is skipped.

Non-goals: attachments' contents, Maildir and MH folders, .msg (Outlook), threads.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from email.message import EmailMessage
from pathlib import Path

from indexer.errors import SkipFile
from indexer.ingest.limits import Deadline, ReadLimits
from indexer.ingest.markup import html_outline
from indexer.ingest.text import Outline, decode_text, make_document, stem_title
from indexer.types import Document

logger = logging.getLogger(__name__)


_HEADERS = ("From", "To", "Cc", "Date")


_FROM_LINE = re.compile(rb"^From ", re.MULTILINE)


_ESCAPED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)


def _read_eml(data: bytes, path: Path, rel: str, limits: ReadLimits) -> list[Document]:
    message = _parse(data)
    if not any(message.get(h) for h in ("From", "To", "Subject", "Date", "Message-ID")):
        raise SkipFile("not an e-mail message: no From, To, Subject, Date or Message-ID header")
    return [_message_document(message, rel, stem_title(path), "eml", limits.deadline)]


def _read_mbox(data: bytes, path: Path, rel: str, limits: ReadLimits) -> list[Document]:
    starts = [m.start() for m in _FROM_LINE.finditer(data)]
    if not starts or data[: starts[0]].strip():
        raise SkipFile("not an mbox: it does not start with a 'From ' line")
    docs: list[Document] = []
    box = stem_title(path)
    for n, (start, end) in enumerate(zip(starts, [*starts[1:], len(data)]), start=1):
        limits.deadline.check()
        raw = data[start:end]
        raw = _ESCAPED_FROM.sub(rb"\1", raw[raw.find(b"\n") + 1 :] if b"\n" in raw else b"")
        try:
            docs.append(
                _message_document(_parse(raw), f"{rel}#{n}", f"{box} message {n}", "mbox", limits.deadline)
            )
        except SkipFile as e:
            logger.debug("%s: message %d left out: %s", rel, n, e.reason)
    if not docs:
        raise SkipFile(f"no messages with text in this mbox ({len(starts)} 'From ' lines)")
    return docs


def _parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)  # policy.default's message class
    return message


def _message_document(
    message: EmailMessage, doc_path: str, fallback: str, kind: str, deadline: Deadline
) -> Document:
    subject = _header(message, "Subject")
    lines = [f"{name}: {value}" for name in _HEADERS if (value := _header(message, name))]
    attached = _attachment_names(message)
    if attached:
        lines.append("Attachments: " + ", ".join(attached))
    title, body = _body(message, deadline)
    outline: Outline = [((), "\n".join(lines)), *body]
    return make_document(doc_path, subject or title or fallback, outline, kind)


def _header(message: EmailMessage, name: str) -> str:
    """A header's decoded value on one line; ``""`` when missing or beyond repair."""
    try:
        value = message.get(name)
    except Exception:  # noqa: BLE001 - a header the parser chokes on is kept as it was written
        value = next((v for k, v in message.raw_items() if k.lower() == name.lower()), None)
    return " ".join(str(value).split()) if value is not None else ""


def _body(message: EmailMessage, deadline: Deadline) -> tuple[str, Outline]:
    """(the HTML part's title, the body's sections): text/plain preferred, else text/html."""
    try:
        part = message.get_body(preferencelist=("plain", "html"))
    except Exception:  # noqa: BLE001 - a malformed MIME tree: no body rather than no message
        part = None
    if part is None:
        return "", []
    text = _part_text(part)
    if part.get_content_subtype() == "html":
        return html_outline(text, deadline)
    return "", [((), text)]


def _part_text(part) -> str:
    try:
        text = part.get_content()
    except (LookupError, UnicodeError, ValueError, AssertionError):  # an unknown charset or a broken encoding
        text = None
    if isinstance(text, str):
        return text.replace("\r\n", "\n").replace("\r", "\n")
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes) or not payload.strip():
        return ""
    try:
        return decode_text(payload)
    except SkipFile:  # binary content labelled as text: the message keeps its headers
        return ""


def _attachment_names(message: EmailMessage) -> list[str]:
    try:
        parts = list(message.iter_attachments()) if message.is_multipart() else []
    except Exception:  # noqa: BLE001
        return []
    names = []
    for part in parts:
        try:
            name = part.get_filename()
        except Exception:  # noqa: BLE001 - an undecodable file name
            name = None
        if name:
            names.append(" ".join(str(name).split()))
    return names
