#!/usr/bin/env bash
# fp32 vs int8 (QAT, PTQ) accuracy of MiniLM-L6 on real SST-2, from the models of sst2_accuracy.sh.
# Usage: bash benchmarks/qat_accuracy.sh [GLUE_DIR] [TRAIN_SAMPLES] [RUNS]
#   needs RUNS/sst2-accuracy/{dense,gmp80} (bash benchmarks/sst2_accuracy.sh GLUE_DIR TRAIN_SAMPLES RUNS/sst2-accuracy)
set -euo pipefail
GLUE=${1:-${SPARSECORE_GLUE_DIR:-../shared/data/glue}}
N=${2:-4000}
RUNS=${3:-runs}
PY=${PYTHON:-python}
BASE="$RUNS/sst2-accuracy"
COMMON=(--task_name sst2 --glue_dir "$GLUE" --max_train_samples "$N" --pad_to_max_length false
        --per_device_train_batch_size 32 --per_device_eval_batch_size 64 --do_train --do_eval
        --save_strategy no --logging_steps 25 --seed 42 --overwrite_output_dir --disable_tqdm true)
CONTROL=$(mktemp --suffix=.yaml)
trap 'rm -f "$CONTROL"' EXIT
# the same recipe without its quantization modifier: what two more fp32 epochs give
$PY - "$CONTROL" <<'PY'
import sys
from importlib import resources
text = (resources.files("sparsecore.recipe") / "builtin" / "minilm-pruned-qat.yaml").read_text()
open(sys.argv[1], "w").write(text.split("quantization_modifiers:")[0])
PY
$PY -m sparsecore.transformers.text_classification --model_name_or_path "$BASE/gmp80" --distill_teacher "$BASE/dense" \
    --recipe "$CONTROL" --output_dir "$RUNS/qat/pruned80-fp32-control" "${COMMON[@]}"
$PY -m sparsecore.transformers.text_classification --model_name_or_path "$BASE/gmp80" --distill_teacher "$BASE/dense" \
    --recipe minilm-pruned-qat --output_dir "$RUNS/qat/pruned80-qat" "${COMMON[@]}"
$PY -m sparsecore.transformers.text_classification --model_name_or_path "$BASE/dense" --task_name sst2 \
    --glue_dir "$GLUE" --recipe "modifiers:
  - !QuantizationModifier
    num_calibration_steps: 16" --one_shot --do_eval --max_train_samples 512 --per_device_train_batch_size 32 \
    --output_dir "$RUNS/qat/dense-ptq" --overwrite_output_dir --disable_tqdm true
for m in pruned80-fp32-control pruned80-qat dense-ptq; do
    rm -rf "$RUNS/qat/$m/deployment"
    $PY -m sparsecore.transformers.export_onnx --model_path "$RUNS/qat/$m"
    $PY -m sparsecore.cli.evaluate_deployment --model_path "$RUNS/qat/$m/deployment" --task_name sst2 --glue_dir "$GLUE"
done
$PY - "$RUNS" <<'PY'
import json, sys
runs = sys.argv[1]
acc = lambda m, f: 100 * json.load(open(f"{runs}/qat/{m}/{f}"))["eval_accuracy"]
print("| model | PyTorch | ONNX Runtime (export) |\n|---|---:|---:|")
for m in ("pruned80-fp32-control", "pruned80-qat", "dense-ptq"):
    print(f"| {m} | {acc(m, 'eval_results.json'):.2f}% | {acc(m, 'deployment/eval_onnx_results.json'):.2f}% |")
PY
