"""The tiny test model, built outside pytest too (the long fuzz run): a random-init 2-layer BERT classifier with
MiniLM's tokenizer, its export after 50% one-shot pruning, and that model quantized post-training."""

from pathlib import Path

PTQ = "modifiers:\n  - !QuantizationModifier\n    num_calibration_steps: 2\n"
HALF_PRUNED = ("modifiers:\n  - !GMPruningModifier\n    params: __ALL_PRUNABLE__\n    final_sparsity: 0.5\n"
               "    end_epoch: 1\n")


def save_tiny_bert(folder: Path) -> Path:
    """Write the random-init (seed 0) 2-layer BERT, hidden 32, 64 positions, and MiniLM's tokenizer to ``folder``."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from sparsecore.adapters.models import minilm_path

    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                                             intermediate_size=64, max_position_embeddings=64)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(minilm_path())).save_pretrained(folder)
    return folder


def export_half_pruned(model: Path, folder: Path) -> Path:
    """``model`` pruned to 50% one-shot into ``folder`` and exported: the deployment folder."""
    from sparsecore.workflows import export, oneshot

    oneshot(model_name_or_path=model, recipe=HALF_PRUNED, output_dir=folder, max_eval_samples=8, max_seq_length=32)
    return export(model_path=folder).deployment


def export_quantized(model: Path, folder: Path) -> Path:
    """``model`` quantized post-training (2 calibration steps) into ``folder`` and exported in integer form."""
    from sparsecore.workflows import export, train

    train(model_name_or_path=model, task_name="sst2", one_shot=True, recipe=PTQ, max_train_samples=32,
          max_eval_samples=8, max_seq_length=32, output_dir=folder, disable_tqdm=True)
    return export(model_path=folder).deployment
