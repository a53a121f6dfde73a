"""The Python API: train (gradual pruning), oneshot, export, then a Pipeline — the example shown in docs/python-api.md."""

from sparsecore import Pipeline
from sparsecore.workflows import export, oneshot, train

# gradual magnitude pruning while fine-tuning (TrainResult: metrics, sparsity table, files written, notes)
pruned = train(model_name_or_path="minilm", task_name="sst2", recipe="minilm-gmp80-demo",
               recipe_args={"num_epochs": 1, "pruning_start_epoch": 0, "pruning_end_epoch": 0.7},
               max_train_samples=256, max_eval_samples=128, max_seq_length=64, pad_to_max_length=False,
               per_device_train_batch_size=16, save_strategy="no", disable_tqdm=True,
               output_dir="out/api-gmp80", overwrite_output_dir=True)
print(pruned.metrics["eval_accuracy"], pruned.sparsity["total"]["sparsity"], pruned.files["sparsity_report"])

# or one-shot: the recipe's final state at once, no training (SparseML's --one_shot)
shot = oneshot(model_name_or_path="minilm", recipe="minilm-gmp80-demo", max_eval_samples=128,
               max_seq_length=64, output_dir="out/api-oneshot", overwrite_output_dir=True)

# export + self-validation (ExportResult: deployment folder, onnx path, validation report)
deployment = export(model_path=pruned.output_dir)
print(deployment.report["max_abs_diff"], deployment.onnx_path)
print(Pipeline.create(model_path=deployment.deployment)(["a gripping, beautifully acted film"]))
