"""Load a sentence-transformers folder without sentence-transformers, when it would add nothing.

The encoder runs a model's transformer itself (:mod:`indexer.encoding.runners`) and pools and normalises the
vectors itself; from sentence-transformers it needs only the tokenizer as configured, the prompts and the pooling.
Importing sentence-transformers (with scikit-learn and SciPy) and transformers' modelling code costs ~3 s of every
CLI run, which an index or search run need not pay. :func:`load_lean` reads such a folder directly when its
pipeline is one the lean runners reproduce exactly (Transformer -> mean/CLS pooling -> Normalize, plain text
tokenisation, a BERT or XLM-R encoder that :mod:`indexer.models.bert` runs, on CPU): the tokenizer through
transformers, the forward in plain PyTorch. Any other folder, a hub id, or a GPU device loads through
sentence-transformers as before. Both give the same token ids and the same vectors
(``tests/indexer/test_lean_model.py``).

Non-goals: training (the trainer always loads a ``SentenceTransformer``), CrossEncoders, models whose
sentence-transformers config asks for anything beyond the plain text path (lower-casing, model or tokenizer
arguments, chat templates, other modalities).
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

from indexer.models.bert import BertEncoder, unsupported

logger = logging.getLogger(__name__)

# sentence_bert_config.json as sentence-transformers writes it for a plain text encoder; anything else -> ST
_PLAIN_TRANSFORMER = {
    "transformer_task": "feature-extraction",
    "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
    "module_output_name": "token_embeddings",
    "do_lower_case": False,
}
_EMPTY_ARGS = (
    "model_args",
    "tokenizer_args",
    "config_args",
    "processor_kwargs",
    "model_kwargs",
    "config_kwargs",
)


# ------------------------------------------------------------------------------------------- pipelines
def pipeline_pooling(modules: list[tuple[str, Any, bool]]) -> str | None:
    """``"mean"`` or ``"cls"`` when a pipeline is Transformer -> Pooling -> (Normalize) with that pooling over
    all tokens (prompt included), which the lean runners reproduce; else ``None``. ``modules`` are
    (class name, pooling mode, include_prompt) per module, from loaded modules or from a folder's files.

    >>> pipeline_pooling([("Transformer", None, True), ("Pooling", "mean", True), ("Normalize", None, True)])
    'mean'
    >>> pipeline_pooling([("Transformer", None, True), ("Pooling", "max", True)]) is None
    True
    """
    names = [name for name, _, _ in modules]
    if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return None
    _, mode, include_prompt = modules[1]
    mode = mode[0] if isinstance(mode, (tuple, list)) and len(mode) == 1 else mode
    return mode if mode in ("mean", "cls") and include_prompt else None


def _pooling_mode(config: dict) -> str | list[str]:
    """The pooling mode a ``1_Pooling/config.json`` records: ``pooling_mode`` (sentence-transformers >= 6), or the
    older one flag per mode (``pooling_mode_mean_tokens: true``, ...)."""
    if "pooling_mode" in config:
        return config["pooling_mode"]
    prefix = "pooling_mode_"
    flags = [k[len(prefix) :] for k, v in config.items() if k.startswith(prefix) and v]
    names = {"mean_tokens": "mean", "cls_token": "cls"}
    return [names.get(flag, flag) for flag in flags]


def _read_json(path: Path) -> Any:  # what the file holds; {} when it is missing
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {"unreadable": True}


def folder_pipeline(folder: Path) -> tuple[str, int | None] | None:
    """(pooling, max_seq_length or None) when the sentence-transformers folder can be loaded lean, else ``None``
    (the reason is logged at debug level)."""
    modules = _read_json(folder / "modules.json")
    if not isinstance(modules, list) or (folder / "adapter_config.json").exists():
        return _refuse(folder, "no plain modules.json (or a PEFT adapter)")
    described: list[tuple[str, Any, bool]] = []
    for module in modules:
        name = str(module.get("type", "")).rsplit(".", 1)[-1]
        pooling = _read_json(folder / module.get("path", "") / "config.json") if name == "Pooling" else {}
        described.append(
            (name, _pooling_mode(pooling) if pooling else None, pooling.get("include_prompt", True))
        )
    pooling_mode = pipeline_pooling(described)
    if pooling_mode is None or modules[0].get("path", "") != "":
        return _refuse(folder, f"pipeline {described}")
    st_config = _read_json(folder / "sentence_bert_config.json")
    unusual = {
        k: v for k, v in st_config.items() if k != "max_seq_length" and _PLAIN_TRANSFORMER.get(k, {}) != v
    }
    if any(st_config.get(k) for k in _EMPTY_ARGS) or set(unusual) - set(_EMPTY_ARGS):
        return _refuse(folder, f"sentence_bert_config {unusual}")
    if not (folder / "tokenizer.json").is_file():
        return _refuse(folder, "no tokenizer.json")
    if why := unsupported(_read_json(folder / "config.json"), folder):
        return _refuse(folder, f"the lean forward {why}")
    return pooling_mode, st_config.get("max_seq_length")


def _refuse(folder: Path, why: str) -> tuple[str, int | None] | None:
    """``None`` for :func:`folder_pipeline`, with the reason logged."""
    logger.debug("%s loads through sentence-transformers: %s", folder, why)
    return None


# ---------------------------------------------------------------------------------------------- the model
class LeanModel:
    """The parts of a ``SentenceTransformer`` the encoder uses, loaded without it: ``encoder`` (the transformer's
    forward, :class:`~indexer.models.bert.BertEncoder`), ``tokenizer`` (capped at the model's positions, as
    sentence-transformers caps it), ``prompts``, ``pooling``, ``max_seq_length``, ``device``, ``preprocess``
    (sentence-transformers' text path: padding to the longest, ``longest_first`` truncation). ``auto_model`` (the
    transformers model, for ONNX / CTranslate2 builds) and ``sentence_transformer()`` (sentence-transformers' own
    ``encode``, the reference of a build's probe) load on first use."""

    def __init__(self, folder: Path, pooling: str, max_seq_length: int | None = None):
        import torch
        from transformers import AutoTokenizer

        self.folder = folder
        self.pooling = pooling
        self.prompts: dict[str, str] = (
            _read_json(folder / "config_sentence_transformers.json").get("prompts") or {}
        )
        self.config = _read_json(folder / "config.json")
        self.encoder = BertEncoder(folder, self.config)
        kwargs = {"model_max_length": max_seq_length} if max_seq_length is not None else {}
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), **kwargs)
        positions = self.config.get("max_position_embeddings", -1)
        if max_seq_length is None and positions != -1:
            self.tokenizer.model_max_length = min(self.tokenizer.model_max_length, positions)
        self.device = torch.device("cpu")

    @functools.cached_property
    def auto_model(self):
        """transformers' model of the folder (eval mode), for the backends' builds."""
        from transformers import AutoModel

        return AutoModel.from_pretrained(str(self.folder)).eval()

    @property
    def max_seq_length(self) -> int:
        return int(self.tokenizer.model_max_length)

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self.tokenizer.model_max_length = value

    def get_embedding_dimension(self) -> int:
        return int(self.config["hidden_size"])  # mean / CLS pooling keeps the hidden size

    def preprocess(self, texts: list[str]) -> dict:
        """Token ids and attention mask, (batch, longest) tensors, exactly as sentence-transformers makes them."""
        return dict(
            self.tokenizer(list(texts), padding=True, truncation="longest_first", return_tensors="pt")
        )

    def sentence_transformer(self):
        """The same folder loaded by sentence-transformers (once per process)."""
        return _full(str(self.folder))


@functools.lru_cache(maxsize=2)
def _full(folder: str):
    from indexer.models.resolve import load_model

    return load_model(folder, device="cpu")


def load_lean(path: str, device: str | None) -> LeanModel | None:
    """A :class:`LeanModel` for a local folder that qualifies (see the module docstring) on CPU, else ``None``."""
    folder = Path(path)
    if not folder.is_dir() or (device is not None and str(device) != "cpu"):
        return None
    found = folder_pipeline(folder)
    if found is None:
        return None
    if device is None:
        import torch

        if torch.cuda.is_available():
            return None
    try:
        return LeanModel(folder, *found)
    except Exception as exc:  # noqa: BLE001 - weights the lean forward cannot read; sentence-transformers tries
        logger.warning("%s loads through sentence-transformers: %s", folder, exc)
        return None


def backbone(model):
    """The transformers model inside a ``SentenceTransformer`` or a :class:`LeanModel` (``None`` for a pipeline
    that does not start with one)."""
    return model.auto_model if isinstance(model, LeanModel) else getattr(model[0], "auto_model", None)


def hidden_states(model):
    """``f(ids, mask) -> (batch, seq, hidden)`` last hidden states of a ``SentenceTransformer``'s or a
    :class:`LeanModel`'s transformer (``mask`` ``None`` for unpadded texts)."""
    if isinstance(model, LeanModel):
        return model.encoder
    auto_model = backbone(model)
    return lambda ids, mask: auto_model(input_ids=ids, attention_mask=mask).last_hidden_state


def model_folder(model) -> str | None:
    """The folder (or hub id) a model was loaded from, without loading anything more."""
    return (
        str(model.folder) if isinstance(model, LeanModel) else getattr(backbone(model), "name_or_path", None)
    )


def sentence_transformer(model):
    """``model`` as a ``SentenceTransformer`` (a :class:`LeanModel`'s folder loaded in full)."""
    return model.sentence_transformer() if isinstance(model, LeanModel) else model


def lean_pooling(model) -> str | None:
    """``"mean"`` or ``"cls"`` when a loaded model's pipeline is one the lean runners reproduce (a
    :class:`LeanModel`'s always is), ``None`` for any other (it then runs through ``SentenceTransformer.encode``)."""
    if isinstance(model, LeanModel):
        return model.pooling
    described = []
    for module in model:
        name = type(module).__name__
        name = "Transformer" if hasattr(module, "auto_model") and name != "Pooling" else name
        described.append(
            (name, getattr(module, "pooling_mode", None), bool(getattr(module, "include_prompt", True)))
        )
    return pipeline_pooling(described)
