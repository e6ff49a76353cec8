"""Typed, frozen configuration for every training stage, validated at construction.

Defaults come from the E5 papers (Wang et al. 2022, "Text Embeddings by Weakly-Supervised Contrastive
Pre-training"; Wang et al. 2024, "Multilingual E5 Text Embeddings") where they give one: temperature 0.01,
consistency filter top-k 2. Each config is saved next to what its stage wrote (``e5search_train.json``).
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from indexer.config import DEFAULT_MODEL
from indexer.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

Precision = Literal["fp32", "bf16", "fp16"]
T = TypeVar("T")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclass(frozen=True)
class CleanConfig:
    """Heuristic cleaning of (query, passage) pairs; lengths are in characters."""

    min_query_chars: int = 3
    max_query_chars: int = 1000
    min_passage_chars: int = 20
    max_passage_chars: int = 20_000
    dedup: bool = True  # same (query, passage) after whitespace/case folding
    drop_identical: bool = True  # query == passage teaches nothing
    languages: tuple[str, ...] = ()  # keep passages detected in these ISO 639-1 languages; () keeps all
    max_pairs: int | None = None  # keep a seeded random sample of this many (after cleaning)
    seed: int = 0

    def __post_init__(self) -> None:
        _check(self.max_pairs is None or self.max_pairs >= 1, f"max_pairs={self.max_pairs}: must be >= 1")
        _check(
            0 <= self.min_query_chars < self.max_query_chars,
            f"min_query_chars={self.min_query_chars}, max_query_chars={self.max_query_chars}: need 0 <= min < max",
        )
        _check(
            0 <= self.min_passage_chars < self.max_passage_chars,
            f"min_passage_chars={self.min_passage_chars}, max_passage_chars={self.max_passage_chars}: "
            "need 0 <= min < max",
        )
        object.__setattr__(self, "languages", tuple(self.languages))


@dataclass(frozen=True)
class FilterConfig:
    """E5's consistency filter (§4): keep a pair if its passage ranks in the top-k among a random pool."""

    model: str = DEFAULT_MODEL
    top_k: int = 2
    pool_size: int = 10_000  # E5 ranks against 1M random passages; 10k is what a CPU affords
    both_directions: bool = False  # also rank the query among a pool of queries, given the passage
    n_samples: int = 20  # kept / dropped examples written to the report
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        _check(self.top_k >= 1, f"top_k={self.top_k}: must be >= 1")
        _check(self.pool_size >= self.top_k, f"pool_size={self.pool_size}: must be >= top_k={self.top_k}")
        _check(self.batch_size >= 1, f"batch_size={self.batch_size}: must be >= 1")


@dataclass(frozen=True)
class ContrastiveConfig:
    """InfoNCE over cosine similarity with in-batch (and optional hard) negatives, gradient-cached.

    ``batch_size`` is the contrastive batch per device; ``mini_batch_size`` bounds memory (GradCache).
    ``instruction`` switches queries to mE5-instruct's ``Instruct: {task}\\nQuery: {q}``; ``instructions``
    maps a record's ``task`` to its own instruction. Prompts are recorded in the output model.
    """

    model: str = DEFAULT_MODEL
    temperature: float = 0.01  # E5: tau = 0.01, i.e. the loss's scale = 1 / tau = 100
    batch_size: int = 32
    mini_batch_size: int | None = 32  # None: no gradient cache (plain MultipleNegativesRankingLoss)
    num_negatives: int = 0  # hard negatives per pair taken from the data's "negatives"
    max_steps: int = 1000
    learning_rate: float = 1e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    max_seq_length: int | None = None  # None: the model's own
    precision: Precision = "fp32"
    gather_across_devices: bool = True  # under torchrun: every device's negatives in every device's loss
    save_steps: int = 500
    save_total_limit: int = 2
    keep_checkpoints: bool = False
    logging_steps: int = 1
    eval_beir: str | None = None  # BEIR folder evaluated every eval_steps (nDCG@10 on eval_split)
    eval_split: str = "dev"
    eval_steps: int = 0
    eval_max_queries: int = 200
    seed: int = 42
    query_prompt: str | None = None  # None: the model's recorded "query" prompt (E5: "query: ")
    passage_prompt: str | None = None  # None: the model's recorded "passage"/"document" prompt
    instruction: str | None = None
    instructions: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(0 < self.temperature <= 1, f"temperature={self.temperature}: must be in (0, 1]; E5 uses 0.01")
        _check(self.batch_size >= 2, f"batch_size={self.batch_size}: in-batch negatives need at least 2")
        _check(
            self.mini_batch_size is None or self.mini_batch_size >= 1,
            f"mini_batch_size={self.mini_batch_size}: must be >= 1, or None to turn gradient caching off",
        )
        _check(self.num_negatives >= 0, f"num_negatives={self.num_negatives}: must be >= 0")
        _check(self.max_steps >= 1, f"max_steps={self.max_steps}: must be >= 1")
        _check(self.learning_rate > 0, f"learning_rate={self.learning_rate}: must be > 0")
        _check(0 <= self.warmup_ratio < 1, f"warmup_ratio={self.warmup_ratio}: must be in [0, 1)")
        _check(
            self.precision in ("fp32", "bf16", "fp16"), f"precision={self.precision!r}: fp32, bf16 or fp16"
        )
        _check(self.save_steps >= 1, f"save_steps={self.save_steps}: must be >= 1")
        _check(self.eval_steps >= 0, f"eval_steps={self.eval_steps}: must be >= 0 (0: no periodic eval)")
        _check(
            not (self.eval_steps and not self.eval_beir),
            "eval_steps is set but eval_beir is not: "
            "give a BEIR folder with a dev split, or set eval_steps=0",
        )
        tasks: dict[str | None, str | None] = {None: self.instruction}
        tasks.update(self.instructions)
        for task, text in tasks.items():
            _check(text is None or bool(text.strip()), f"instruction for task {task!r} is empty")
        object.__setattr__(self, "instructions", dict(self.instructions))

    @property
    def scale(self) -> float:
        """What sentence-transformers calls the loss's scale: logits = cos / tau = cos * scale."""
        return 1.0 / self.temperature


@dataclass(frozen=True)
class DistillConfig(ContrastiveConfig):
    """E5 §3.2 fine-tuning: KL(teacher ‖ student) over each query's candidates + alpha · InfoNCE."""

    alpha: float = 0.2  # weight of the InfoNCE term (SimLM/E5-style; tune per task)
    teacher_temperature: float = 1.0  # softmax temperature on the cross-encoder's logits
    num_negatives: int = 7
    learning_rate: float = 2e-5

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.alpha >= 0, f"alpha={self.alpha}: must be >= 0")
        _check(self.teacher_temperature > 0, f"teacher_temperature={self.teacher_temperature}: must be > 0")
        _check(self.num_negatives >= 1, f"num_negatives={self.num_negatives}: distillation needs candidates")


@dataclass(frozen=True)
class MineConfig:
    """Hard negatives from BM25 or a dense model, skipping the top ranks and a margin to avoid false negatives."""

    method: Literal["bm25", "dense"] = "bm25"
    model: str = DEFAULT_MODEL  # for method="dense"
    num_negatives: int = 7
    range_min: int = 3  # skip the first ranks: they hold unlabelled positives most often
    range_max: int = 100
    relative_margin: float | None = (
        0.05  # drop candidates scoring above (1 - m) · positive score (NV-Retriever)
    )
    absolute_margin: float | None = None
    sampling: Literal["top", "random"] = "top"
    teacher: str | None = None  # a CrossEncoder folder: adds "teacher_scores" for distillation
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        _check(self.method in ("bm25", "dense"), f"method={self.method!r}: use 'bm25' or 'dense'")
        _check(self.num_negatives >= 1, f"num_negatives={self.num_negatives}: must be >= 1")
        _check(
            0 <= self.range_min < self.range_max,
            f"range_min={self.range_min}, range_max={self.range_max}: need 0 <= range_min < range_max",
        )
        _check(
            self.range_max - self.range_min >= self.num_negatives,
            f"range {self.range_min}..{self.range_max} holds fewer than num_negatives={self.num_negatives}",
        )
        _check(
            self.relative_margin is None or 0 <= self.relative_margin < 1,
            f"relative_margin={self.relative_margin}: must be in [0, 1)",
        )
        _check(self.sampling in ("top", "random"), f"sampling={self.sampling!r}: 'top' or 'random'")


@dataclass(frozen=True)
class RerankerConfig:
    """A cross-encoder trained with binary cross-entropy on positives and mined hard negatives."""

    model: str = DEFAULT_MODEL  # backbone: the default model's BERT, or any model folder / hub id
    max_steps: int = 500
    batch_size: int = 16
    learning_rate: float = 3e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_length: int = 256
    num_negatives: int = 3  # per positive, from the data's "negatives"
    precision: Precision = "fp32"
    lora_r: int = 0  # > 0: train a LoRA adapter (+ the head) and also save it on its own under adapter/
    lora_alpha: int = 16
    # "bce": pointwise binary cross-entropy; "lce": softmax cross-entropy over the positive and its num_negatives
    # hard negatives as one group (localized contrastive estimation, Gao et al. 2021)
    loss: str = "bce"
    num_layers: int = 0  # > 0: keep only the bottom num_layers transformer layers (a cheaper cross-encoder)
    freeze_embeddings: bool = False  # the (250k-token) word, position and type embeddings stay the backbone's
    # "cls": BERT's pooler + classifier on the first token (transformers' sequence classification); "mean": mean
    # pooling + one linear score, as the E5 backbone was trained to pool (its first token carries almost nothing in
    # the bottom layers: cosine 1.000 between candidates at layer 6)
    head: str = "cls"
    save_steps: int = 500
    save_total_limit: int = 2
    keep_checkpoints: bool = False
    logging_steps: int = 1
    seed: int = 42

    def __post_init__(self) -> None:
        _check(self.max_steps >= 1, f"max_steps={self.max_steps}: must be >= 1")
        _check(self.batch_size >= 1, f"batch_size={self.batch_size}: must be >= 1")
        _check(16 <= self.max_length <= 8192, f"max_length={self.max_length}: must be between 16 and 8192")
        _check(self.num_negatives >= 0, f"num_negatives={self.num_negatives}: must be >= 0")
        _check(self.lora_r >= 0, f"lora_r={self.lora_r}: must be >= 0 (0: full fine-tuning)")
        _check(self.loss in ("bce", "lce"), f"loss={self.loss!r}: 'bce' (pointwise) or 'lce' (listwise)")
        _check(self.num_layers >= 0, f"num_layers={self.num_layers}: must be >= 0 (0: all layers)")
        _check(self.head in ("cls", "mean"), f"head={self.head!r}: 'cls' or 'mean'")
        _check(
            self.loss == "bce" or self.num_negatives >= 1,
            f"loss='lce' needs num_negatives >= 1 (got {self.num_negatives})",
        )
        _check(
            self.precision in ("fp32", "bf16", "fp16"), f"precision={self.precision!r}: fp32, bf16 or fp16"
        )


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build ``cls`` from a dict, refusing unknown keys (a typo would otherwise be silently ignored)."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
    values = {k: tuple(v) if k == "languages" else v for k, v in data.items()}
    return cls(**values)


def read_toml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
