"""What the app refuses, driven by Streamlit's AppTest: user text rendered as Markdown, folders outside the
``--allow-root`` folders, and Host names it does not answer (the rules; a real server is in test_app_server.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from app import access
from app.render import WORD_JOINER, md
from indexer.build.job import build_index
from tests.app.conftest import BEIR, CORPUS
from tests.app.test_app import allow, click, fake_model, start, texts, to_index_page  # noqa: F401
from tests.fakes import FakeEncoder

EVIL = "[x](http://evil.example) ![](http://evil.example/i.png) <img src=x> www.evil.example a@evil.example :red[x]"
FIX = "e5search app --allow-root DIR"
_UNESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def shown(markdown: str) -> str:
    """The text a Markdown body shows when every markup character in it is backslash-escaped."""
    return _UNESCAPE.sub(r"\1", markdown).replace(WORD_JOINER, "")


def is_literal(markdown: str) -> bool:
    """No unescaped character that could start a link, image, HTML or directive, and no bare URL or address."""
    unescaped = re.search(r"(?<!\\)[\[\]()<>!:@]", markdown.replace("\\\\", ""))
    return unescaped is None and re.search(r"(?i)https?\\?://|www\\?\.|\w\\?@", markdown) is None


# ------------------------------------------------------------------------------------------------ markdown
def test_md_escapes_markup_and_keeps_the_text():
    body = md(EVIL)
    assert shown(body) == EVIL
    assert is_literal(body)
    assert md("plain text, 'quoted' and ümlauts") == "plain text, 'quoted' and ümlauts"


def test_lang_from_the_url_is_shown_as_text(monkeypatch, fake_index):
    at = start(monkeypatch, fake_index, {"q": "coffee", "lang": EVIL})
    [error] = [e.value for e in at.error]
    assert "unknown language" in error
    assert EVIL in shown(error)
    assert is_literal(error.split("unknown language ", 1)[1])


@pytest.fixture()
def evil_index(tmp_path: Path) -> Path:
    """The fixture corpus with a queries file whose note, language and answer carry Markdown links."""
    corpus = Path(shutil.copytree(CORPUS, tmp_path / "corpus"))
    example = {"text": "coffee [beans](http://evil.example)", "lang": EVIL, "note": EVIL, "expected": [EVIL]}
    (tmp_path / "corpus_queries.jsonl").write_text(json.dumps(example) + "\n", encoding="utf-8")
    build_index(corpus, tmp_path / "index", encoder=FakeEncoder())
    return tmp_path / "index"


def test_queries_file_note_and_pills_are_shown_as_text(monkeypatch, evil_index):
    at = start(monkeypatch, evil_index, {"q": "coffee [beans](http://evil.example)"})
    [caption] = [c for c in texts(at.caption) if "Example query" in c]
    assert shown(caption) == f"Example query · {EVIL} · answered by {EVIL}"
    assert is_literal(caption)
    [label] = at.button_group(key="example").proto.options
    assert shown(label.content) == f"coffee [beans](http://evil.example) · {EVIL}"
    assert is_literal(label.content)


def test_folder_typed_on_the_index_page_is_shown_as_text(monkeypatch, tmp_path):
    allow(monkeypatch, tmp_path)
    at = to_index_page(start(monkeypatch, tmp_path / "index"))
    at.text_input(key="folder").input(str(tmp_path / EVIL)).run()
    [warning] = texts(at.warning)
    assert shown(warning).startswith(f"{tmp_path / EVIL} does not exist")
    assert is_literal(warning)


# ------------------------------------------------------------------------------------------------ allowed roots
def test_without_allow_root_the_pages_index_nothing(monkeypatch, tmp_path, fake_index):
    monkeypatch.delenv(access.ROOTS_ENV, raising=False)
    at = to_index_page(start(monkeypatch, fake_index))
    assert any("Indexing from this page is off" in t and FIX in t for t in texts(at.info))
    assert not [t for t in at.text_input if t.key == "folder"]
    assert not [b for b in at.button if b.label == "Index this folder"]
    [reindex] = [b for b in at.button if b.label.startswith("Re-index")]
    assert reindex.disabled and FIX in reindex.help
    assert [m.label for m in at.metric] == ["files", "documents", "chunks", "on disk"]  # still shown
    at.radio(key="page").set_value("evaluate").run()
    assert any("Evaluating from this page is off" in t and FIX in t for t in texts(at.info))
    assert not [t for t in at.text_input if t.key == "eval_folder"]


def outside_paths(root: Path, outside: Path) -> list[str]:
    """Ways to name a folder outside ``root``: plainly, through ``..``, and through a symlink inside it."""
    (root / "link").symlink_to(outside, target_is_directory=True)
    return [str(outside), f"{root}/../{outside.name}", str(root / "link"), "/etc"]


def test_a_folder_outside_the_root_is_refused_with_the_fix(monkeypatch, tmp_path):
    root, outside = tmp_path / "root", tmp_path / "secret"
    shutil.copytree(CORPUS, root / "docs")
    (outside / "inner").mkdir(parents=True)
    allow(monkeypatch, root)
    at = to_index_page(start(monkeypatch, tmp_path / "index"))
    for folder in outside_paths(root, outside):
        at.text_input(key="folder").input(folder).run()
        [warning] = texts(at.warning)
        assert "\n" not in warning and "is outside the allowed folders" in warning, folder
        assert FIX in shown(warning)
        assert not [s for s in at.selectbox if s.key == "subfolder"], folder  # nothing listed
        [button] = [b for b in at.button if b.label == "Index this folder"]
        assert button.disabled


def test_a_folder_inside_the_root_is_indexed(monkeypatch, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(CORPUS, root / "docs")
    allow(monkeypatch, root)
    at = to_index_page(start(monkeypatch, tmp_path / "index"))
    assert at.text_input(key="folder").value == str(root.resolve())  # starts at the root
    assert [b for b in at.button if b.label == "⬆ Parent folder"][0].disabled  # no way up out of it
    at.selectbox(key="subfolder").set_value("docs").run()
    assert at.text_input(key="folder").value == str((root / "docs").resolve())
    click(at, "Index this folder")
    [summary] = [t for t in texts(at.success) if t.startswith("Indexed")]
    assert "10 added" in summary
    [reindex] = [b for b in at.button if b.label.startswith("Re-index")]
    assert not reindex.disabled


def test_the_index_is_written_only_to_the_apps_index_or_under_the_root(monkeypatch, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(CORPUS, root / "docs")
    allow(monkeypatch, root)
    at = to_index_page(start(monkeypatch, tmp_path / "index"))
    at.text_input(key="folder").input(str(root / "docs")).run()
    at.text_input(key="target_index").input(str(tmp_path / "elsewhere")).run()
    assert any("is outside the allowed folders" in t for t in texts(at.warning))
    assert [b for b in at.button if b.label == "Index this folder"][0].disabled
    at.text_input(key="target_index").input(str(root / "my-index")).run()
    click(at, "Index this folder")
    assert (root / "my-index" / "index.sqlite").exists()
    assert not (tmp_path / "elsewhere").exists()


def test_reindex_is_off_when_the_source_is_outside_the_root(monkeypatch, tmp_path, fake_index):
    allow(monkeypatch, tmp_path)  # the fixture index was built from tests/fixtures/app/corpus
    at = to_index_page(start(monkeypatch, fake_index))
    [reindex] = [b for b in at.button if b.label.startswith("Re-index")]
    assert reindex.disabled and FIX in reindex.help


def test_evaluation_reads_only_under_the_root(monkeypatch, tmp_path):
    allow(monkeypatch, tmp_path)
    at = start(monkeypatch, tmp_path / "index")
    at.radio(key="page").set_value("evaluate").run()
    at.text_input(key="eval_folder").input(str(BEIR)).run()
    assert any("is outside the allowed folders" in t and FIX in shown(t) for t in texts(at.warning))
    assert not [b for b in at.button if b.label == "Run evaluation"]


def test_roots_come_resolved_from_the_environment(monkeypatch, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").symlink_to(tmp_path / "a")
    monkeypatch.setenv(access.ROOTS_ENV, os.pathsep.join([str(tmp_path / "b"), "", str(tmp_path / "c/..")]))
    assert access.allowed_roots() == ((tmp_path / "a").resolve(), tmp_path.resolve())


# ------------------------------------------------------------------------------------------------ hosts
@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:8501", True),
        ("localhost", True),
        ("LOCALHOST.:8501", True),
        ("[::1]:8501", True),
        ("search.lan:8501", True),  # the --host it was started with
        (None, True),  # no request (AppTest); a browser always sends Host
        ("evil.example:8501", False),
        ("127.0.0.1.evil.example", False),
        ("localhost.evil.example:8501", False),
        ("user@127.0.0.1", False),
        ("127.0.0.1:port", False),
        ("127.0.0.1/x", False),
        ("", False),
    ],
)
def test_host_allow_list(monkeypatch, host, allowed):
    monkeypatch.setenv(access.HOSTS_ENV, "Search.LAN")
    assert access.host_allowed(host, access.allowed_hosts()) is allowed
