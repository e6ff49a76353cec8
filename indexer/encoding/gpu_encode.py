"""Fast corpus encoding on a CUDA GPU for BERT-family sentence-transformers models with mean pooling.

What plain ``SentenceTransformer.encode`` leaves on the table on a large GPU, and what this does instead:

- tokenisation runs on a CPU thread one window ahead of the GPU (the Rust tokenizer releases the GIL), so the
  GPU never waits for the next batch's text;
- batches are cut by a token budget over length-sorted texts (many short texts per batch, few long ones), so
  every batch is large enough to fill the GPU;
- ``packed=True`` runs the transformer on the concatenated tokens of a batch with no padding at all: linear
  layers, layer norms and GELU see only real tokens, and attention runs per sequence through PyTorch's
  scaled-dot-product attention on a nested (jagged) tensor;
- bf16 weights, results kept on the GPU and copied back once at the end.

The output matches the model's own fp32 embeddings to within bf16 rounding (cosine >= 0.999 per text is the
bar, see ``bench/encode_gpu.py``). Unsupported models (other architectures or poolings) raise ``ValueError`` so
the caller falls back to ``SentenceTransformer.encode``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class Batch:
    index: torch.Tensor  # positions of the batch's texts in the input, int64
    ids: torch.Tensor  # packed: (tokens,) ; padded: (batch, length)
    lengths: torch.Tensor  # (batch,) tokens per text, int32


def _bert_parts(model):
    """The backbone and pooling of a ``SentenceTransformer`` if this module can run it, else ``ValueError``."""
    modules = list(model)
    if len(modules) < 2 or type(modules[1]).__name__ != "Pooling":
        raise ValueError("fast GPU path needs Transformer + Pooling modules")
    pooling = modules[1].get_config_dict() if hasattr(modules[1], "get_config_dict") else {}
    if pooling.get("pooling_mode", "mean") != "mean" or not pooling.get("include_prompt", True):
        raise ValueError(f"fast GPU path supports mean pooling over all tokens, not {pooling}")
    backbone = modules[0].auto_model
    if (
        backbone.config.model_type not in ("bert", "xlm-roberta")
        or getattr(backbone.config, "position_embedding_type", "absolute") != "absolute"
    ):
        raise ValueError(f"fast GPU path supports BERT / XLM-R encoders, not {backbone.config.model_type}")
    normalize = any(type(m).__name__ == "Normalize" for m in modules[2:])
    return modules[0], backbone, normalize


class GPUEncoder:
    """Encode many texts fast with a loaded ``SentenceTransformer`` (see the module docstring)."""

    def __init__(
        self,
        model,
        *,
        dtype: torch.dtype = torch.bfloat16,
        max_tokens: int = 65536,
        window: int = 16384,
        packed: bool = True,
        device: str | torch.device | None = None,
    ):
        transformer, backbone, self.normalize = _bert_parts(model)
        self.tokenizer = transformer.tokenizer
        self.max_length = int(model.max_seq_length)
        self.device = torch.device(device) if device is not None else backbone.device
        self.dtype = dtype
        self.max_tokens = max(max_tokens, self.max_length)
        self.window = window
        self.packed = packed
        self.pad_id = int(self.tokenizer.pad_token_id or 0)
        self.model = (
            backbone
            if backbone.dtype == dtype and backbone.device == self.device
            else _copy_to(backbone, self.device, dtype)
        )
        self.model.eval()
        self.dim = int(self.model.config.hidden_size)
        # XLM-R numbers positions from padding_idx + 1; BERT from 0
        self.position_offset = self.pad_id + 1 if self.model.config.model_type == "xlm-roberta" else 0

    # -- batching (CPU thread) --------------------------------------------------------------------------------
    def _tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer(
            list(texts),
            add_special_tokens=True,
            truncation=True,
            max_length=self.max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )["input_ids"]

    def batches(self, texts: Sequence[str]) -> Iterator[Batch]:
        """Length-sorted token-budget batches, window by window (pinned CPU tensors)."""
        for start in range(0, len(texts), self.window):
            yield from self._batches(self._tokenize(texts[start : start + self.window]), start)

    def _batches(self, ids: Sequence[Sequence[int]], start: int = 0) -> Iterator[Batch]:
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(-lengths, kind="stable")
        i = 0
        while i < len(order):
            longest = int(lengths[order[i]])
            if self.packed:  # fill the budget with real tokens
                cum = np.cumsum(lengths[order[i:]])
                n = max(1, int(np.searchsorted(cum, self.max_tokens, side="right")))
            else:  # the budget counts padding too
                n = max(1, self.max_tokens // longest)
            rows = order[i : i + n]
            i += n
            lens = lengths[rows]
            if self.packed:
                tensor = torch.from_numpy(np.concatenate([np.asarray(ids[r], dtype=np.int64) for r in rows]))
            else:
                width = -(-int(lens.max()) // 8) * 8
                grid = np.full((len(rows), width), self.pad_id, dtype=np.int64)
                for j, r in enumerate(rows):
                    grid[j, : lens[j]] = ids[r]
                tensor = torch.from_numpy(grid)
            pin = self.device.type == "cuda"
            yield Batch(
                index=_pin(torch.from_numpy(rows + start), pin),
                ids=_pin(tensor, pin),
                lengths=_pin(torch.from_numpy(lens.astype(np.int32)), pin),
            )

    # -- encoding (GPU) ---------------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """fp32 embeddings of ``texts`` (already prompted), in input order, L2-normalised if the model does."""
        return self._run(self.batches(texts), len(texts))

    def encode_ids(self, ids: Sequence[Sequence[int]]) -> np.ndarray:
        """Like :meth:`encode`, for texts already tokenised (special tokens included, truncated)."""
        return self._run(self._batches(ids), len(ids))

    @torch.inference_mode()
    def _run(self, batches: Iterator[Batch], n: int) -> np.ndarray:
        out = torch.empty((n, self.dim), dtype=torch.float32, device=self.device)
        for batch in _prefetch(batches, depth=4):
            index = batch.index.to(self.device, non_blocking=True)
            ids = batch.ids.to(self.device, non_blocking=True)
            lengths = batch.lengths.to(self.device, non_blocking=True)
            emb = self._forward_packed(ids, lengths) if self.packed else self._forward_padded(ids, lengths)
            out[index] = F.normalize(emb, dim=-1) if self.normalize else emb
        return out.cpu().numpy()

    def _forward_padded(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = (torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths[:, None]).to(torch.long)
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        summed = (hidden.float() * mask[..., None]).sum(1)
        return summed / lengths[:, None].float()

    def _forward_packed(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        m = self.model
        offsets = F.pad(torch.cumsum(lengths, 0, dtype=torch.int64), (1, 0))
        seq = torch.repeat_interleave(
            torch.arange(len(lengths), device=ids.device), lengths.long(), output_size=ids.shape[0]
        )
        positions = torch.arange(ids.shape[0], device=ids.device) - offsets[seq] + self.position_offset
        emb = m.embeddings
        x = (
            emb.word_embeddings(ids)
            + emb.position_embeddings(positions)
            + emb.token_type_embeddings.weight[0]
        )
        x = emb.LayerNorm(x)
        for layer in m.encoder.layer:
            x = _layer_packed(layer, x, offsets)
        summed = torch.zeros((len(lengths), x.shape[1]), dtype=torch.float32, device=x.device)
        summed.index_add_(0, seq, x.float())
        return summed / lengths[:, None].float()


def _layer_packed(layer, x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """One BERT layer on packed tokens ``x`` (tokens, hidden); sequences delimited by ``offsets``."""
    att = layer.attention
    heads = (
        att.self.num_attention_heads
        if hasattr(att.self, "num_attention_heads")
        else layer.attention.self.config.num_attention_heads
    )
    hidden = x.shape[1]
    d = hidden // heads

    def split(t: torch.Tensor) -> torch.Tensor:  # (tokens, hidden) -> nested (batch, heads, j, d)
        nt = torch.nested.nested_tensor_from_jagged(t.view(-1, heads, d), offsets)
        return nt.transpose(1, 2)

    q, k, v = att.self.query(x), att.self.key(x), att.self.value(x)
    ctx = F.scaled_dot_product_attention(split(q), split(k), split(v))
    ctx = ctx.transpose(1, 2).values().reshape(-1, hidden)
    x = att.output.LayerNorm(att.output.dense(ctx) + x)
    h = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(x))
    return layer.output.LayerNorm(layer.output.dense(h) + x)


def _copy_to(module, device: torch.device, dtype: torch.dtype):
    import copy

    return copy.deepcopy(module).to(device=device, dtype=dtype)


def _pin(t: torch.Tensor, pin: bool) -> torch.Tensor:
    return t.pin_memory() if pin else t


def _prefetch(items: Iterator[Batch], depth: int) -> Iterator[Batch]:
    """Run ``items`` on a background thread, ``depth`` items ahead; re-raise its errors here."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def work() -> None:
        try:
            for item in items:
                q.put(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(exc)
        q.put(done)

    thread = threading.Thread(target=work, name="gpu-encode-batches", daemon=True)
    thread.start()
    while (item := q.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item
    thread.join()
