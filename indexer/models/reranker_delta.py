"""The reranker delta's maths (:mod:`indexer.models.default_reranker` is the format's home): which layer a weight
belongs to, truncation, differencing and applying, and the two cross-encoder heads the format knows.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from indexer.errors import E5SearchError

DELTA = ".delta"  # "{param}.delta": trained - base
LORA_A, LORA_B = ".lora_A", ".lora_B"  # "{weight}.lora_A" (r, in), "{weight}.lora_B" (out, r)

_LAYER = re.compile(r"(?:^|\.)encoder\.layer\.(\d+)\.")


def layer_of(key: str) -> int | None:
    """The transformer layer a weight belongs to, or None (embeddings, pooler, head).

    >>> layer_of("bert.encoder.layer.11.output.dense.weight"), layer_of("classifier.bias")
    (11, None)
    """
    m = _LAYER.search(key)
    return int(m.group(1)) if m else None


def keep_layers(state: dict[str, Any], num_layers: int) -> dict[str, Any]:
    """``state`` without the weights of layers ``>= num_layers`` (the layer-truncated backbone)."""
    return {k: v for k, v in state.items() if (layer := layer_of(k)) is None or layer < num_layers}


def _like(value: Any, ref: Any) -> Any:  # value in ref's dtype (torch tensors or NumPy arrays)
    return value.to(ref.dtype) if hasattr(value, "to") else np.asarray(value, dtype=ref.dtype)


def apply_delta(state: dict[str, Any], delta: dict[str, Any], scale: float = 1.0) -> dict[str, Any]:
    """A new state dict: ``.delta`` tensors added, LoRA pairs folded (times ``scale``), bare tensors replacing
    their own. The inverse of :func:`make_delta`'s differencing; the caller's dicts are left alone.

    >>> apply_delta({"w": np.eye(2)}, {"w.lora_A": np.ones((1, 2)), "w.lora_B": np.ones((2, 1))}, 0.5)["w"]
    array([[1.5, 0.5],
           [0.5, 1.5]])
    """
    out = dict(state)
    for key, value in delta.items():
        if key.endswith(LORA_B):
            continue
        target = key[: -len(LORA_A)] if key.endswith(LORA_A) else key.removesuffix(DELTA)
        if target not in state:
            raise E5SearchError(f"reranker delta {key!r} does not fit the default model's weights")
        base = state[target]
        if key.endswith(LORA_A):
            out[target] = base + scale * (delta[target + LORA_B] @ value)  # (out, r) @ (r, in) -> (out, in)
        elif key.endswith(DELTA):
            out[target] = base + _like(value, base)
        else:
            out[target] = _like(value, base)
        if tuple(out[target].shape) != tuple(base.shape):
            raise E5SearchError(f"reranker delta {key!r} does not fit the default model's weights")
    return out


def difference(trained: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """What :func:`apply_delta` needs to turn ``base`` (already truncated) into ``trained``: fp16 ``.delta`` for
    changed layer weights, fp32 bare tensors for the others that changed; frozen embeddings checked, not kept."""
    import torch

    if set(trained) != set(base):
        odd = sorted(set(trained) ^ set(base))[:3]
        raise E5SearchError(f"the trained reranker's weights {odd} do not match the default backbone's")
    out: dict[str, Any] = {}
    for key, value in trained.items():
        diff = value.float() - base[key].float()
        if not torch.any(diff):
            continue
        if ".embeddings." in key:
            raise E5SearchError(
                f"{key} changed in training: the shipped format keeps embeddings frozen; "
                "train with frozen embeddings"
            )
        if layer_of(key) is not None:
            out[key + DELTA] = diff.half().contiguous()
        else:
            out[key] = value.float().contiguous()
    return out


# ------------------------------------------------------------------------------------ the two heads
def mean_pooling_cross_encoder(path: str, max_length: int | None):
    """A CrossEncoder of the backbone at ``path``: mean pooling over the pair's tokens and one linear score (a
    plain sentence-transformers folder once saved). E5 was trained to mean-pool: its first token is nearly the same
    vector for every input in the bottom layers, so a first-token (``cls``) head there has nothing to read."""
    import torch
    from sentence_transformers.base.modules import Dense, Transformer
    from sentence_transformers.cross_encoder import CrossEncoder
    from sentence_transformers.sentence_transformer.modules import Pooling

    backbone = Transformer(path, max_seq_length=max_length)
    dim = backbone.get_embedding_dimension()
    score = Dense(
        dim,
        1,
        activation_function=torch.nn.Identity(),
        module_input_name="sentence_embedding",
        module_output_name="scores",
    )
    return CrossEncoder(modules=[backbone, Pooling(dim, "mean"), score], device="cpu")


def head_of(model) -> str:
    """``mean`` for a CrossEncoder that pools and scores with modules of its own, ``cls`` for transformers'
    sequence classification."""
    return "mean" if len(model) > 1 else "cls"


def scoring_module(model, head: str):
    """The module whose state dict the delta is taken over: the whole CrossEncoder for ``mean`` (backbone and
    score layer), the transformers model for ``cls`` (keys ``bert.…``, ``classifier.…``)."""
    return model if head == "mean" else model[0].model
