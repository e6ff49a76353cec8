"""Every trained model folder gets a model card (README.md) built from what the run recorded."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from trainer import runs
from trainer.config import ContrastiveConfig, MineConfig, RerankerConfig
from trainer.data import read_pairs
from trainer.reranker import train_reranker
from trainer.stages import run_mine
from trainer.train import train_contrastive


def _front_matter(card: str) -> dict[str, object]:
    head = card.split("---\n")[1]
    return {k: json.loads(v) for k, v in (line.split(": ", 1) for line in head.splitlines())}


def test_contrastive_run_has_a_card_with_its_facts(tiny_model: Path, pairs_path: Path, tmp_path: Path):
    beir = tmp_path / "dev-beir"  # a dev set, so the run logs evaluation numbers the card must show
    (beir / "qrels").mkdir(parents=True)
    pairs = read_pairs(pairs_path)
    lines = [json.dumps({"_id": f"d{i}", "text": p.passage}, ensure_ascii=False) for i, p in enumerate(pairs)]
    (beir / "corpus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    lines = [json.dumps({"_id": f"q{i}", "text": p.query}, ensure_ascii=False) for i, p in enumerate(pairs)]
    (beir / "queries.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (beir / "qrels" / "dev.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(len(pairs)))
    )
    config = ContrastiveConfig(
        model=str(tiny_model), batch_size=4, mini_batch_size=2, max_steps=2, learning_rate=1e-3,
        save_steps=50, eval_beir=str(beir), eval_steps=2,
    )  # fmt: skip
    out = train_contrastive(pairs_path, tmp_path / "m", config)
    card = (out / "README.md").read_text(encoding="utf-8")
    record = json.loads((out / runs.RECORD).read_text(encoding="utf-8"))

    front = _front_matter(card)
    assert front["base_model"] == str(tiny_model) and front["pipeline_tag"] == "sentence-similarity"
    sha = hashlib.sha256(pairs_path.read_bytes()).hexdigest()
    assert f"`{pairs_path.name}`" in card and f"`{sha}`" in card and record["data_sha256"] == sha
    assert f"| pairs | {len(pairs)} |" in card
    for source, n in Counter(p.source or "unnamed" for p in pairs).items():
        assert f"{source}: {n}" in card
    assert f"`{record['loss']}`" in card and "| steps | 2 |" in card
    assert "| batch | 4 per device x 1 device(s) = 4 |" in card and "| learning rate | 0.001 " in card
    assert f"| precision | {record['config']['precision']} |" in card
    for name, prompt in record["prompts"].items():  # the prompts the model folder records
        assert f"| `{name}` | `{json.dumps(prompt, ensure_ascii=False)}` |" in card
    ndcg = next(m for m in runs.read_metrics(out) if "eval_dev-beir-dev_cosine_ndcg@10" in m)
    assert "at step 2" in card
    assert f"| `dev-beir-dev_cosine_ndcg@10` | {round(ndcg['eval_dev-beir-dev_cosine_ndcg@10'], 4)} |" in card
    assert "### Licence of the data" in card and "check the licence of each source" in card


def test_reranker_card_says_no_prompts_and_no_evals(tiny_model: Path, pairs_path: Path, tmp_path: Path):
    mined = tmp_path / "mined.jsonl"  # the reranker trains on hard negatives (as tests/trainer/test_train.py)
    mine = MineConfig(
        method="dense",
        model=str(tiny_model),
        num_negatives=2,
        range_min=0,
        range_max=10,
        relative_margin=None,
    )
    run_mine(pairs_path, mined, mine)
    config = RerankerConfig(model=str(tiny_model), max_steps=1, batch_size=4, num_negatives=2, max_length=64)
    out = train_reranker(mined, tmp_path / "r", config)
    card = (out / "README.md").read_text(encoding="utf-8")
    assert _front_matter(card)["pipeline_tag"] == "text-ranking"
    assert "None: a cross-encoder reads" in card and "None recorded during training" in card
    assert f"| training examples | {json.loads((out / runs.RECORD).read_text())['examples']} |" in card
