"""Losses: the gradient-cached loss equals the full-batch loss (values and gradients); temperature and prompts
are applied exactly once; the cached replay runs under autocast (the known 7x slowdown trap)."""

from __future__ import annotations

import pytest
import torch

from trainer.config import ContrastiveConfig
from trainer.data import Pair
from trainer.losses import DistillKLInfoNCELoss, contrastive_loss
from trainer.train import build_datasets

PAIRS = [
    Pair("How do bees make honey?", "Bees collect nectar from flowers and evaporate its water."),
    Pair("Wie funktioniert Photosynthese?", "Pflanzen wandeln mit Licht Kohlendioxid und Wasser um."),
    Pair("Как работает компас?", "Стрелка компаса намагничена."),
    Pair("茶是怎么制作的？", "茶叶采摘后经过萎凋、揉捻、发酵和干燥等工序制成。"),
    Pair("كيف تتكون الغيوم؟", "تتكون الغيوم عندما يبرد بخار الماء."),
    Pair("Why do cats purr?", "Cats purr by vibrating the muscles of the larynx."),
]
NEGS = ["Tides are caused by the gravitational pull of the moon.", "Magma rises through cracks in the crust."]


@pytest.fixture()
def model(tiny_model):
    from sentence_transformers import SentenceTransformer

    m = SentenceTransformer(str(tiny_model), device="cpu")
    m.eval()  # no dropout: the full-batch and cached passes must see the same network
    return m


def _features(model, with_negatives: bool = False):
    from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator

    pairs = [Pair(p.query, p.passage, tuple(NEGS) if with_negatives else ()) for p in PAIRS]
    data, prompts = build_datasets(
        pairs, 2 if with_negatives else 0, {"default": "query: "}, "passage: ", False
    )
    batch = SentenceTransformerDataCollator(preprocess_fn=model.preprocess, prompts=prompts)(list(data))
    cols = ["anchor", "positive"] + (["negative_1", "negative_2"] if with_negatives else [])
    return [{k[len(c) + 1 :]: v for k, v in batch.items() if k.startswith(c + "_")} for c in cols], batch


def _close(got: torch.Tensor, want: torch.Tensor, name: str) -> None:
    """Equal up to float32 summation-order noise, relative to the gradient's own scale."""
    scale = max(1.0, float(want.abs().max()))
    torch.testing.assert_close(got, want, rtol=1e-4, atol=2e-5 * scale, msg=name)


def _loss_and_grads(model, loss_fn, features, labels=None):
    model.zero_grad()
    loss = loss_fn([dict(f) for f in features], labels)
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("with_negatives", [False, True])
def test_cached_loss_equals_full_batch(model, with_negatives):
    features, _ = _features(model, with_negatives)
    full = contrastive_loss(model, ContrastiveConfig(temperature=0.01, mini_batch_size=None))
    cached = contrastive_loss(model, ContrastiveConfig(temperature=0.01, mini_batch_size=2))
    assert type(cached).__name__ == "CachedMultipleNegativesRankingLoss"
    v_full, g_full = _loss_and_grads(model, full, features)
    v_cached, g_cached = _loss_and_grads(model, cached, features)
    assert v_cached == pytest.approx(v_full, rel=1e-5)
    assert g_full.keys() == g_cached.keys() and len(g_full) > 10
    for name in g_full:
        _close(g_cached[name], g_full[name], name)


def test_cached_distill_loss_equals_full_batch(model):
    features, _ = _features(model, with_negatives=True)
    labels = torch.tensor([[5.0, 1.0, -2.0]] * len(PAIRS))
    full = DistillKLInfoNCELoss(model, temperature=0.02, alpha=0.5, mini_batch_size=None)
    cached = DistillKLInfoNCELoss(model, temperature=0.02, alpha=0.5, mini_batch_size=4)
    v_full, g_full = _loss_and_grads(model, full, features, labels)
    v_cached, g_cached = _loss_and_grads(model, cached, features, labels)
    assert v_cached == pytest.approx(v_full, rel=1e-5)
    for name in g_full:
        _close(g_cached[name], g_full[name], name)


def _info_nce_by_hand(q: torch.Tensor, d: torch.Tensor, tau: float) -> float:
    logits = q @ d.T / tau  # (batch, batch)
    return float(-torch.log_softmax(logits, dim=1).diag().mean())


def test_temperature_and_prompts_applied_once(model):
    features, batch = _features(model)
    with torch.no_grad():
        loss = contrastive_loss(model, ContrastiveConfig(temperature=0.01, mini_batch_size=None))
        value = loss([dict(f) for f in features], None).item()
        # the same texts through encode(), with each prompt given once, and InfoNCE written out by hand
        q = model.encode([p.query for p in PAIRS], prompt="query: ", convert_to_tensor=True)
        d = model.encode([p.passage for p in PAIRS], prompt="passage: ", convert_to_tensor=True)
    assert loss.scale == 100.0  # scale = 1 / tau
    assert value == pytest.approx(_info_nce_by_hand(q, d, 0.01), rel=1e-4)
    assert value != pytest.approx(_info_nce_by_hand(q, d, 0.0001), rel=1e-2)
    tokens = model.tokenizer.convert_ids_to_tokens(batch["anchor_input_ids"][0])
    assert tokens[:3] == ["[CLS]", "query", ":"] and tokens.count("query") == 1 and "passage" not in tokens
    tokens = model.tokenizer.convert_ids_to_tokens(batch["positive_input_ids"][0])
    assert tokens[:3] == ["[CLS]", "passage", ":"] and tokens.count("passage") == 1


def test_distill_loss_by_hand(model):
    features, _ = _features(model, with_negatives=True)
    labels = torch.tensor([[5.0, 1.0, -2.0]] * len(PAIRS))
    with torch.no_grad():
        embs = [model(dict(f))["sentence_embedding"] for f in features]
        value = DistillKLInfoNCELoss(model, temperature=0.05, alpha=0.3, teacher_temperature=2.0).compute(
            embs, labels
        )
    q, cands = embs[0], torch.stack(embs[1:], dim=1)  # (b, d), (b, 3, d)
    student = torch.log_softmax(torch.einsum("bd,bcd->bc", q, cands) / 0.05, dim=1)
    teacher = torch.softmax(labels / 2.0, dim=1)
    kl = (teacher * (teacher.log() - student)).sum(1).mean()
    nce = -torch.log_softmax(q @ torch.cat(embs[1:]).T / 0.05, dim=1).diag().mean()
    assert float(value) == pytest.approx(float(kl + 0.3 * nce), rel=1e-5)


def test_cached_replay_runs_under_autocast(tiny_model, pairs_path, tmp_path, monkeypatch):
    """bf16 training: the cached loss's second forward (inside backward) must run in bf16 too."""
    import indexer.models.resolve as resolve
    from trainer.train import train_contrastive

    dtypes: list[torch.dtype] = []
    real_load = resolve.load_model

    def load_with_hook(name, device=None):
        m = real_load(name, device=device)
        layer = m[0].auto_model.encoder.layer[0].intermediate.dense
        layer.register_forward_hook(lambda mod, inp, out: dtypes.append(out.dtype))
        return m

    monkeypatch.setattr(resolve, "load_model", load_with_hook)
    config = ContrastiveConfig(
        model=str(tiny_model), batch_size=4, mini_batch_size=2, max_steps=1, precision="bf16"
    )
    train_contrastive(pairs_path, tmp_path / "out", config)
    assert len(dtypes) >= 8  # 2 columns x 2 mini-batches, embedded without and then with a graph
    assert set(dtypes) == {torch.bfloat16}, dtypes
