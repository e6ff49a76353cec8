"""The BERT / XLM-R encoder forward in plain PyTorch, on a model folder's safetensors weights (the lean CPU path).

Why not transformers' ``BertModel``: importing transformers' modelling stack takes ~1.7 s of every index and search
run on a 2-core machine (``bench/results/index_vs_st.md``), ~6 % of indexing 400 abstracts, for a forward pass that
is a dozen lines. This is the textbook one (Devlin et al. 2019; XLM-R differs only in where positions start):
word + position + token-type embeddings and a LayerNorm, then per layer scaled-dot-product self-attention, a
residual LayerNorm, an exact-GELU feed-forward and another residual LayerNorm. It is checked against transformers'
``BertModel`` and ``XLMRobertaModel`` (``tests/indexer/test_lean_model.py``), and the encoder's vectors against
sentence-transformers'. ONNX and CTranslate2 builds still export transformers' model.

Non-goals: relative position embeddings, other activations, decoders, fp16/bf16 or sharded checkpoints (such
folders load through sentence-transformers, see :func:`unsupported`).
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS = "model.safetensors"


def unsupported(config: dict, folder: Path) -> str | None:
    """Why :class:`BertEncoder` cannot run this model (``None`` when it can)."""
    checks = {
        "model type": config.get("model_type") in ("bert", "xlm-roberta"),
        "absolute positions": config.get("position_embedding_type", "absolute") == "absolute",
        "exact GELU": config.get("hidden_act") == "gelu",
        "an encoder only": not config.get("is_decoder") and not config.get("add_cross_attention"),
        "fp32 weights": config.get("dtype", config.get("torch_dtype")) in (None, "float32"),
        "one safetensors file": (folder / WEIGHTS).is_file(),
    }
    missing = [what for what, ok in checks.items() if not ok]
    return f"needs {', '.join(missing)}" if missing else None


class BertEncoder:
    """``encoder(ids, mask) -> (batch, seq, hidden)`` last hidden states, as transformers' model gives them.
    ``mask`` is the (batch, seq) attention mask, or ``None`` for unpadded texts (then attention runs unmasked)."""

    def __init__(self, folder: Path, config: dict):
        from safetensors.torch import load_file

        weights = load_file(str(folder / WEIGHTS))
        prefix = next(
            (
                p
                for p in ("", "bert.", "roberta.", "model.")
                if f"{p}embeddings.word_embeddings.weight" in weights
            ),
            "",
        )
        self.w = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
        self.layers = int(config["num_hidden_layers"])
        missing = sorted(set(self._names()) - set(self.w))
        if missing:
            raise ValueError(
                f"{folder / WEIGHTS} lacks {len(missing)} weights of a BERT encoder, e.g. {missing[0]}"
            )
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        # XLM-R numbers positions from padding_idx + 1 and gives padding padding_idx; BERT from 0
        self.pad = int(config.get("pad_token_id") or 0) if config["model_type"] == "xlm-roberta" else None

    def _names(self) -> list[str]:
        """The weights the forward reads."""
        parts = ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                 "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm"]  # fmt: skip
        names = [
            f"embeddings.{e}.weight"
            for e in ("word_embeddings", "position_embeddings", "token_type_embeddings")
        ]
        names += ["embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]
        return names + [
            f"encoder.layer.{i}.{p}.{t}"
            for i in range(self.layers)
            for p in parts
            for t in ("weight", "bias")
        ]

    def _norm(self, x, name: str):
        import torch.nn.functional as F

        return F.layer_norm(x, x.shape[-1:], self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps)

    def _linear(self, x, name: str):
        import torch.nn.functional as F

        return F.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def _embed(self, ids):
        import torch

        if self.pad is None:
            positions = torch.arange(ids.shape[1], device=ids.device)[None, :]  # (1, seq)
        else:
            real = ids.ne(self.pad).long()  # (b, seq)
            positions = torch.cumsum(real, dim=1) * real + self.pad
        w = self.w
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][positions]
            + w["embeddings.token_type_embeddings.weight"][0]
        )  # (b, seq, hidden)
        return self._norm(x, "embeddings.LayerNorm")

    def _attention(self, x, mask, layer: str):
        import torch.nn.functional as F

        b, seq, hidden = x.shape

        def heads(name: str):  # (b, seq, hidden) -> (b, heads, seq, d)
            return (
                self._linear(x, f"{layer}.attention.self.{name}").view(b, seq, self.heads, -1).transpose(1, 2)
            )

        ctx = F.scaled_dot_product_attention(heads("query"), heads("key"), heads("value"), attn_mask=mask)
        return ctx.transpose(1, 2).reshape(b, seq, hidden)  # (b, seq, hidden)

    def __call__(self, ids, mask=None):
        import torch.nn.functional as F

        x = self._embed(ids)
        keep = None if mask is None else mask.bool()[:, None, None, :]  # (b, 1, 1, seq): keys a query may see
        for i in range(self.layers):
            layer = f"encoder.layer.{i}"
            x = self._norm(
                self._linear(self._attention(x, keep, layer), f"{layer}.attention.output.dense") + x,
                f"{layer}.attention.output.LayerNorm",
            )
            h = F.gelu(self._linear(x, f"{layer}.intermediate.dense"))
            x = self._norm(self._linear(h, f"{layer}.output.dense") + x, f"{layer}.output.LayerNorm")
        return x  # (b, seq, hidden)
