"""Losses: sentence-transformers' (cached) InfoNCE for contrastive training, and the one it lacks: E5's
fine-tuning objective KL(teacher ‖ student) + α · InfoNCE (Wang et al. 2022, §3.2).

Temperature τ is a config field; sentence-transformers calls its inverse the *scale* (logits = cos · scale), so
τ = 0.01 is scale = 100. Gradient caching (Gao et al. 2021, "GradCache") comes from sentence-transformers'
``CachedLossMixin``: embed mini-batches without a graph, take the loss's gradient w.r.t. the embeddings, then
re-embed each mini-batch with a graph and back-propagate the cached gradient. The distillation loss reuses it,
so its contrastive batch is as independent of memory as the pre-training one.

Mixed precision: the cached second forward runs inside the backward pass, outside the trainer's autocast
block. It is only fast because accelerate wraps the model's own ``forward`` in autocast (so every call is
autocast, wherever it happens); ``tests/trainer/test_losses.py`` checks that the replay runs in bf16.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from sentence_transformers.base.losses.gradcache import CachedLossMixin
from sentence_transformers.cross_encoder.losses import MultipleNegativesRankingLoss as CrossEncoderMNRL
from sentence_transformers.sentence_transformer.losses import (
    CachedMultipleNegativesRankingLoss,
    MultipleNegativesRankingLoss,
)
from sentence_transformers.util import all_gather_with_grad, get_rank
from torch import Tensor, nn

from trainer.config import ContrastiveConfig, DistillConfig


def distributed() -> bool:
    """Whether this process is one of several (torchrun sets WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def contrastive_loss(model, config: ContrastiveConfig) -> nn.Module:
    """InfoNCE with in-batch (+ hard) negatives at temperature ``config.temperature``; cached if asked.

    Under ``torchrun`` with ``gather_across_devices`` every device scores its queries against the passages
    of all devices (batch_size · world_size · (1 + n_neg) candidates), with gradients flowing back.
    """
    gather = config.gather_across_devices and distributed()
    if config.mini_batch_size is None:
        return MultipleNegativesRankingLoss(model, scale=config.scale, gather_across_devices=gather)
    return CachedMultipleNegativesRankingLoss(
        model, scale=config.scale, mini_batch_size=config.mini_batch_size, gather_across_devices=gather
    )


def info_nce(queries: Tensor, docs: Tensor, temperature: float, offset: int = 0) -> Tensor:
    """Mean InfoNCE of each query against all ``docs``; query i's positive is doc ``offset + i``.

    Args:
        queries: (batch, dim) L2-normalised.
        docs: (n_docs, dim) L2-normalised; positives first, then any negatives (and other devices' docs).
    """
    logits = queries @ docs.T / temperature  # (batch, n_docs)
    target = torch.arange(offset, offset + len(queries), device=queries.device)  # (batch,)
    return F.cross_entropy(logits, target)


class DistillKLInfoNCELoss(CachedLossMixin, nn.Module):
    """KL(p_teacher ‖ p_student) over each query's own candidates, plus α · InfoNCE over the whole batch.

    Inputs: (anchor, positive, negative_1, ..., negative_n) columns and a ``label`` column holding the
    teacher's scores for (positive, negative_1, ..., negative_n). ``p_teacher = softmax(scores / teacher_τ)``,
    ``p_student = softmax(cos(q, c) / τ)``. With ``mini_batch_size`` set the batch is embedded with
    GradCache, giving the same value and gradients with bounded memory.
    """

    def __init__(
        self,
        model,
        temperature: float = 0.01,
        alpha: float = 0.2,
        teacher_temperature: float = 1.0,
        mini_batch_size: int | None = None,
        gather_across_devices: bool = False,
    ):
        super().__init__()
        self.model = model
        self.temperature = temperature
        self.alpha = alpha
        self.teacher_temperature = teacher_temperature
        self.mini_batch_size = mini_batch_size  # type: ignore[assignment]
        self.gather_across_devices = gather_across_devices

    @classmethod
    def from_config(cls, model, config: DistillConfig) -> DistillKLInfoNCELoss:
        return cls(
            model,
            temperature=config.temperature,
            alpha=config.alpha,
            teacher_temperature=config.teacher_temperature,
            mini_batch_size=config.mini_batch_size,
            gather_across_devices=config.gather_across_devices and distributed(),
        )

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        features = list(sentence_features)
        if len(features) < 3:
            raise ValueError(
                f"distillation needs (anchor, positive, negative_1, ...) columns, got {len(features)}"
            )
        if self.mini_batch_size is None:
            return self.compute([self.model(f)["sentence_embedding"] for f in features], labels)
        return self.forward_cached(features, labels)

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        """GradCache's step 2: the loss from every column's mini-batch embeddings."""
        assert labels is not None
        loss = self.compute([torch.cat(column) for column in reps], labels)
        if with_backward:
            loss.backward()
            loss = loss.detach()
        return loss

    def compute(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        q = F.normalize(embeddings[0], dim=-1)  # (batch, dim)
        cands = F.normalize(torch.stack(embeddings[1:], dim=1), dim=-1)  # (batch, 1 + n_neg, dim)
        student = torch.einsum("bd,bcd->bc", q, cands) / self.temperature  # (batch, 1 + n_neg)
        teacher = labels.to(student.dtype) / self.teacher_temperature  # (batch, 1 + n_neg)
        if teacher.shape != student.shape:
            raise ValueError(
                f"teacher scores have shape {tuple(teacher.shape)}, expected {tuple(student.shape)}"
            )
        kl = F.kl_div(
            F.log_softmax(student, dim=-1),
            F.log_softmax(teacher, dim=-1),
            log_target=True,
            reduction="batchmean",
        )
        columns = [F.normalize(e, dim=-1) for e in embeddings[1:]]  # (1 + n_neg) x (batch, dim)
        offset = 0
        if self.gather_across_devices:
            columns = [all_gather_with_grad(c) for c in columns]  # (1 + n_neg) x (batch * world, dim)
            offset = get_rank() * len(q)
        docs = torch.cat(columns, dim=0)  # ((1 + n_neg) * batch * world, dim), positives first
        return kl + self.alpha * info_nce(q, docs, self.temperature, offset)

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "alpha": self.alpha,
            "teacher_temperature": self.teacher_temperature,
            "mini_batch_size": self.mini_batch_size,
            "gather_across_devices": self.gather_across_devices,
        }


class GroupSoftmaxLoss(CrossEncoderMNRL):
    """Localized contrastive estimation for cross-encoders (Gao et al. 2021): softmax cross-entropy over each query's
    group — its positive and its own hard negatives — on raw logits. sentence-transformers' cross-encoder
    ``MultipleNegativesRankingLoss`` with no in-batch negatives, no sigmoid and scale 1."""

    def __init__(self, model) -> None:
        super().__init__(model, num_negatives=None, scale=1, activation_fn=None)

    def get_in_batch_negatives(self, anchors, candidates):
        return iter(())  # the group's own hard negatives only: another query's passages are easy ones
