#!/usr/bin/env bash
# Dense vs 80% GMP (+ distillation) accuracy of MiniLM-L6 on real SST-2.
# Usage: bash benchmarks/sst2_accuracy.sh [GLUE_DIR] [TRAIN_SAMPLES] [OUT]
set -euo pipefail
GLUE=${1:-${SPARSECORE_GLUE_DIR:-../shared/data/glue}}
N=${2:-4000}
OUT=${3:-runs/sst2-accuracy}
PY=${PYTHON:-python}
COMMON=(--task_name sst2 --glue_dir "$GLUE" --max_train_samples "$N" --pad_to_max_length false
        --per_device_train_batch_size 32 --per_device_eval_batch_size 64 --do_train --do_eval
        --save_strategy no --logging_steps 50 --seed 42 --overwrite_output_dir --disable_tqdm true)
$PY -m sparsecore.transformers.text_classification --model_name_or_path minilm --recipe dense-finetune \
    --recipe_args "num_epochs=2,init_lr=1e-4" --output_dir "$OUT/dense" "${COMMON[@]}"
$PY -m sparsecore.transformers.text_classification --model_name_or_path "$OUT/dense" \
    --distill_teacher "$OUT/dense" --recipe minilm-gmp80-demo \
    --recipe_args "num_epochs=4,pruning_start_epoch=0,pruning_end_epoch=3,pruning_update_frequency=0.25,init_lr=1e-4" \
    --output_dir "$OUT/gmp80" "${COMMON[@]}"
$PY - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
d, p = (json.load(open(f"{out}/{k}/eval_results.json")) for k in ("dense", "gmp80"))
print(f"| model | encoder sparsity | SST-2 val accuracy (872) |\n|---|---:|---:|")
print(f"| MiniLM-L6 dense | {100*d['encoder_sparsity']:.1f}% | {100*d['eval_accuracy']:.2f}% |")
print(f"| MiniLM-L6 GMP 80% + KD | {100*p['encoder_sparsity']:.1f}% | {100*p['eval_accuracy']:.2f}% |")
PY
