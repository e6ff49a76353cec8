#!/usr/bin/env bash
# Phase 2 of bench/train_reranker.sh when the machine is shared: phase 1 (linear schedule to STEPS) is stopped at a
# checkpoint and continued from that folder on a short schedule of its own that anneals to 0 (another data order).
set -euo pipefail
cd "$(dirname "$0")/.."
W=${W:-artifacts/rerank2}
FROM=${FROM:-$W/phase1-150}
export PYTHONPATH=. OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
PY=${PY:-.venv/bin/python}
$PY -m trainer.cli reranker --pairs "$W/train.jsonl" --output "$W/model2" --model "$FROM" --max-steps "${STEPS:-160}" \
    --batch-size 8 --loss lce --num-negatives 7 --num-layers 6 --head mean --freeze-embeddings --max-length 192 \
    --precision bf16 --learning-rate "${LR:-7e-5}" --warmup-ratio 0.03 --save-steps 20 --seed 1
