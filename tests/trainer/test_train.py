"""Training stages end to end on CPU with the tiny model: resume, prompts recorded, and every output model
loads, indexes and searches through the product's own code (Encoder, build_index, Index, Reranker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer.errors import ConfigError
from trainer import runs
from trainer.config import ContrastiveConfig, DistillConfig, MineConfig, RerankerConfig
from trainer.data import Pair, TrainingDataError, read_pairs, write_pairs
from trainer.stages import torch_model_config
from trainer.train import train_contrastive, train_distill

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "trainer"


def _tiny(model: Path, **kw) -> ContrastiveConfig:
    base = dict(
        model=str(model), batch_size=4, mini_batch_size=2, max_steps=2, learning_rate=1e-3, save_steps=50
    )
    return ContrastiveConfig(**{**base, **kw})


def _losses(output: Path) -> list[tuple[int, float]]:
    return [(m["step"], m["loss"]) for m in runs.read_metrics(output) if "loss" in m]


def _index_and_search(model_dir: Path, tmp_path: Path, reranker: Path | None = None):
    from indexer.build.job import build_index
    from indexer.encoding.encoder import Encoder
    from indexer.search.index import Index

    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    for i, p in enumerate(read_pairs(FIXTURES / "pairs.jsonl")):
        (docs / f"doc{i}.txt").write_text(p.passage + "\n", encoding="utf-8")
    encoder = Encoder(torch_model_config(str(model_dir)))
    index_dir = tmp_path / f"index-{model_dir.name}"
    build_index(docs, index_dir, encoder=encoder)
    index = Index.open(index_dir, encoder=encoder, reranker=str(reranker) if reranker else None)
    try:
        return index.search("How do bees make honey?", mode="hybrid", k=3, rerank=reranker is not None)
    finally:
        index.close()


def _mine_dense(pairs_path: Path, tmp_path: Path, tiny_model: Path) -> Path:
    """One dense-mined hard negative per pair, written to ``tmp_path/mined.jsonl``."""
    from trainer.stages import run_mine

    mined = tmp_path / "mined.jsonl"
    config = MineConfig(
        method="dense", model=str(tiny_model), num_negatives=1, range_min=0, range_max=5, relative_margin=None
    )
    run_mine(pairs_path, mined, config)
    return mined


def test_resume_continues_the_same_run(tiny_model, pairs_path, tmp_path, monkeypatch):
    config = _tiny(tiny_model, max_steps=6, save_steps=3)
    train_contrastive(pairs_path, tmp_path / "whole", config)
    whole = _losses(tmp_path / "whole")

    class Crash(runs.MetricsJsonl):  # a job killed right after its step-3 checkpoint
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 4:
                raise KeyboardInterrupt

    monkeypatch.setattr(runs, "MetricsJsonl", Crash)
    with pytest.raises(KeyboardInterrupt):
        train_contrastive(pairs_path, tmp_path / "resumed", config)
    assert runs.last_checkpoint(tmp_path / "resumed").name == "checkpoint-3"
    monkeypatch.undo()
    train_contrastive(pairs_path, tmp_path / "resumed", config)
    resumed = _losses(tmp_path / "resumed")
    assert [s for s, _ in resumed] == [1, 2, 3, 4, 5, 6] == [s for s, _ in whole]
    assert [v for _, v in resumed] == pytest.approx([v for _, v in whole], rel=1e-5)
    assert not (tmp_path / "resumed" / runs.CHECKPOINTS).exists()  # cleaned up once finished


def test_contrastive_writes_a_model_that_indexes_and_searches(tiny_model, pairs_path, tmp_path):
    out = train_contrastive(pairs_path, tmp_path / "model", _tiny(tiny_model, max_seq_length=16))
    record = json.loads((out / runs.RECORD).read_text())
    assert record["finished"] and record["scale"] == 100.0 and record["pairs"] == 16
    assert record["loss"] == "CachedMultipleNegativesRankingLoss"
    st = json.loads((out / "config_sentence_transformers.json").read_text())
    assert st["prompts"] == {"query": "query: ", "passage": "passage: ", "document": "passage: "}
    from sentence_transformers import SentenceTransformer

    assert SentenceTransformer(str(out)).max_seq_length == 128  # training truncation is not saved
    result = _index_and_search(out, tmp_path)
    assert len(result.hits) == 3
    # finished with this config and data: a second call is a no-op; another config is refused
    assert train_contrastive(pairs_path, out, _tiny(tiny_model, max_seq_length=16)) == out
    with pytest.raises(ConfigError, match="another config"):
        train_contrastive(pairs_path, out, _tiny(tiny_model, max_steps=3))


def test_instruction_format_is_recorded_and_used_by_the_encoder(tiny_model, pairs_path, tmp_path):
    from indexer.encoding.encoder import Encoder

    config = _tiny(
        tiny_model, instruction="Given a question, retrieve passages that answer it", passage_prompt=""
    )
    out = train_contrastive(pairs_path, tmp_path / "instruct", config)
    enc = Encoder(torch_model_config(str(out)))
    assert enc.query_prompt == "Instruct: Given a question, retrieve passages that answer it\nQuery: "
    assert enc.passage_prompt == ""


def test_prefixed_data_is_refused(tiny_model, tmp_path):
    path = tmp_path / "prefixed.jsonl"
    write_pairs(path, [Pair("query: bees", "passage: honey"), Pair("query: cats", "passage: purr")])
    with pytest.raises(TrainingDataError, match="starts with the prompt 'query: '"):
        train_contrastive(path, tmp_path / "m", _tiny(tiny_model))


def test_mine_reranker_distill_chain(tiny_model, pairs_path, tmp_path):
    from trainer.stages import run_mine, run_reranker

    mined = tmp_path / "mined.jsonl"
    run_mine(
        pairs_path,
        mined,
        MineConfig(
            method="dense",
            model=str(tiny_model),
            num_negatives=2,
            range_min=0,
            range_max=10,
            relative_margin=None,
        ),
    )
    ce = run_reranker(
        mined,
        tmp_path / "ce",
        RerankerConfig(model=str(tiny_model), max_steps=2, batch_size=4, num_negatives=2, max_length=64),
    )
    assert json.loads((ce / runs.RECORD).read_text())["examples"] == 16 * 3
    scored = tmp_path / "scored.jsonl"
    run_mine(
        pairs_path,
        scored,
        MineConfig(
            method="dense",
            model=str(tiny_model),
            num_negatives=2,
            range_min=0,
            range_max=10,
            relative_margin=None,
            teacher=str(ce),
        ),
    )
    assert all(len(p.teacher_scores) == 3 for p in read_pairs(scored))
    out = train_distill(
        scored,
        tmp_path / "distilled",
        DistillConfig(
            model=str(tiny_model),
            batch_size=4,
            mini_batch_size=2,
            max_steps=2,
            num_negatives=2,
            save_steps=50,
        ),
    )
    assert json.loads((out / runs.RECORD).read_text())["loss"] == "DistillKLInfoNCELoss"
    result = _index_and_search(out, tmp_path, reranker=ce)
    assert result.reranked and len(result.hits) == 3


def test_distill_without_teacher_scores_says_how_to_get_them(tiny_model, pairs_path, tmp_path):

    mined = _mine_dense(pairs_path, tmp_path, tiny_model)
    with pytest.raises(TrainingDataError, match="train mine --teacher"):
        train_distill(
            mined, tmp_path / "d", DistillConfig(model=str(tiny_model), batch_size=4, num_negatives=1)
        )


def test_lora_reranker_saves_a_small_adapter_and_a_plain_folder(tiny_model, pairs_path, tmp_path):
    from indexer.retrieval.rerank import Reranker
    from trainer.stages import run_reranker

    mined = _mine_dense(pairs_path, tmp_path, tiny_model)
    ce = run_reranker(
        mined,
        tmp_path / "ce",
        RerankerConfig(
            model=str(tiny_model), max_steps=1, batch_size=4, num_negatives=1, max_length=64, lora_r=4
        ),
    )
    assert (ce / "adapter" / "adapter_config.json").is_file()
    scores = Reranker(str(ce)).score("How do bees make honey?", ["Bees collect nectar.", "Кошки мурлычут."])
    assert scores.shape == (2,)


def test_exported_delta_rebuilds_the_merged_reranker(tiny_model, pairs_path, tmp_path):
    """The shipped-delta path (export, then fold into the backbone without peft) against peft's own merge."""
    from indexer.errors import E5SearchError
    from indexer.models.default_reranker import build_default_reranker, is_built
    from indexer.retrieval.rerank import Reranker
    from trainer.reranker import export_delta
    from trainer.stages import run_reranker

    mined = _mine_dense(pairs_path, tmp_path, tiny_model)
    ce = run_reranker(
        mined,
        tmp_path / "ce",
        RerankerConfig(
            model=str(tiny_model),
            max_steps=2,
            batch_size=4,
            num_negatives=1,
            max_length=64,
            lora_r=4,
            learning_rate=1e-2,
        ),
    )
    meta = export_delta(ce, tmp_path / "asset")
    assert meta["merge_max_abs_diff"] < 1e-5 and meta["lora_scale"] == 4.0  # alpha 16 / r 4
    built = build_default_reranker(
        tmp_path / "built", asset_dir=tmp_path / "asset"
    )  # verifies reference scores
    assert is_built(built, tmp_path / "asset")
    passages = ["Bees collect nectar.", "Кошки мурлычут.", "蜜蜂采蜜。"]
    want = Reranker(str(ce)).score("How do bees make honey?", passages)
    got = Reranker(str(built)).score("How do bees make honey?", passages)
    assert got == pytest.approx(want, rel=1e-4, abs=1e-5)
    stamp = (built / "model.safetensors").stat().st_mtime_ns
    assert build_default_reranker(built, asset_dir=tmp_path / "asset") == built  # cached: not rebuilt
    assert (built / "model.safetensors").stat().st_mtime_ns == stamp
    meta["reference"]["scores"][0] += 1.0  # a delta that no longer matches its recorded scores is refused
    (tmp_path / "asset" / "reranker.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(E5SearchError, match="differ from the recorded"):
        build_default_reranker(tmp_path / "built", asset_dir=tmp_path / "asset")
    assert is_built(built, tmp_path / "asset") is False


def test_beir_dev_eval_every_n_steps_is_logged(tiny_model, pairs_path, tmp_path):
    beir = tmp_path / "dev-beir"
    (beir / "qrels").mkdir(parents=True)
    pairs = read_pairs(pairs_path)
    with open(beir / "corpus.jsonl", "w", encoding="utf-8") as f:
        f.writelines(
            json.dumps({"_id": f"d{i}", "title": "", "text": p.passage}, ensure_ascii=False) + "\n"
            for i, p in enumerate(pairs)
        )
    with open(beir / "queries.jsonl", "w", encoding="utf-8") as f:
        f.writelines(
            json.dumps({"_id": f"q{i}", "text": p.query}, ensure_ascii=False) + "\n"
            for i, p in enumerate(pairs)
        )
    (beir / "qrels" / "dev.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(len(pairs)))
    )
    out = train_contrastive(pairs_path, tmp_path / "m", _tiny(tiny_model, eval_beir=str(beir), eval_steps=1))
    evals = [m for m in runs.read_metrics(out) if any(k.endswith("ndcg@10") for k in m)]
    assert [m["step"] for m in evals] == [1, 2]
    assert 0 < evals[-1]["eval_dev-beir-dev_cosine_ndcg@10"] <= 1


def test_per_task_instructions_are_applied_and_recorded(tiny_model, pairs_path, tmp_path):
    pairs = read_pairs(pairs_path)
    tasked = tmp_path / "tasked.jsonl"
    write_pairs(
        tasked, [Pair(p.query, p.passage, task="qa" if i % 2 else "lookup") for i, p in enumerate(pairs)]
    )
    config = _tiny(tiny_model, instruction="Retrieve a passage", instructions={"qa": "Answer the question"})
    out = train_contrastive(tasked, tmp_path / "m", config)
    prompts = json.loads((out / "config_sentence_transformers.json").read_text())["prompts"]
    assert prompts["query"] == "Instruct: Retrieve a passage\nQuery: "
    assert prompts["query:qa"] == "Instruct: Answer the question\nQuery: "
    assert prompts["query:lookup"] == prompts["query"]
    with pytest.raises(ConfigError, match="instructions has no entry for it"):
        train_contrastive(
            tasked, tmp_path / "m2", _tiny(tiny_model, instructions={"qa": "Answer the question"})
        )


@pytest.mark.parametrize("head", ["cls", "mean"])
def test_listwise_reranker_on_bottom_layers_trains_layers_not_embeddings(
    tiny_model, pairs_path, tmp_path, head
):
    """loss="lce" + num_layers + freeze_embeddings: the saved folder has the kept layers only, its embeddings are
    the backbone's bit for bit, its layers moved, and the group loss starts at about log(1 + negatives)."""
    import math

    from safetensors.torch import load_file

    from indexer.retrieval.rerank import Reranker
    from trainer.stages import run_reranker

    mined = _mine_dense(pairs_path, tmp_path, tiny_model)
    ce = run_reranker(
        mined,
        tmp_path / "ce",
        RerankerConfig(
            model=str(tiny_model),
            max_steps=3,
            batch_size=4,
            num_negatives=1,
            max_length=64,
            loss="lce",
            num_layers=1,
            freeze_embeddings=True,
            learning_rate=1e-3,
            head=head,
        ),
    )
    record = json.loads((ce / runs.RECORD).read_text())
    assert record["loss"] == "GroupSoftmaxLoss" and record["examples"] == 16
    assert abs(record["first_loss"] - math.log(2)) < 0.3  # a fresh head: about uniform over the group of 2
    assert json.loads((ce / "config.json").read_text())["num_hidden_layers"] == 1
    trained = load_file(str(ce / "model.safetensors"))
    base = load_file(str(tiny_model / "model.safetensors"))
    emb = [k for k in trained if "embeddings" in k]
    assert emb and all(torch_equal(trained[k], base[_base_key(k, base)]) for k in emb)
    layer = [k for k in trained if ".layer.0." in k and k.endswith("weight") and "LayerNorm" not in k]
    assert any(not torch_equal(trained[k], base[_base_key(k, base)]) for k in layer)
    assert not any(".layer.1." in k for k in trained)
    scores = Reranker(str(ce)).score("How do bees make honey?", ["Bees collect nectar.", "Кошки мурлычут."])
    assert scores.shape == (2,) and (head == "cls" or scores[0] != scores[1])  # a cls head may not tell yet
    assert ("Pooling" in (ce / "modules.json").read_text()) == (head == "mean")


def torch_equal(a, b) -> bool:
    return a.shape == b.shape and bool((a == b).all())


def _base_key(key: str, base: dict) -> str:
    """A cross-encoder weight name ("bert.embeddings...") in the bi-encoder folder ("embeddings..." or same)."""
    return key if key in base else key.removeprefix("bert.")
