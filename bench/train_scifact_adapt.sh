#!/usr/bin/env bash
# Self-supervised adaptation on SciFact's corpus only (title -> abstract), consistency-filtered, then contrastive
# fine-tuning of the default model; dense nDCG@10 before/after on the fixed test subset (bench/train_scifact.py).
# Sized for the shared 2-core CPU: 2,000 sampled pairs, texts truncated to 128 tokens, 100 steps of batch 16.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${W:-artifacts/train/scifact}
mkdir -p "$W"
export PYTHONPATH=. OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PY=.venv/bin/python
T="$PY -m trainer.cli"
$T pairs --beir-corpus ../shared/data/scifact-beir --output "$W/pairs.jsonl" --min-passage-chars 100 \
   --max-pairs 2000
$T filter --pairs "$W/pairs.jsonl" --output "$W/filtered.jsonl" --top-k 2 --pool-size 2000 --max-seq-length 128 \
   --progress
$T contrastive --pairs "$W/filtered.jsonl" --output "$W/model" --max-steps ${STEPS:-100} --batch-size 16 \
   --mini-batch-size 16 --max-seq-length 128 --learning-rate 2e-5 --save-steps 25
if [ "${EVAL:-1}" = 1 ]; then
  $PY bench/train_scifact.py --model "$W/model" --json "$W/after.json"
fi
