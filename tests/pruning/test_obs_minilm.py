"""One-shot OBS vs magnitude on a fine-tuned MiniLM, measured on real SST-2 rows."""

import copy

import pytest
import torch

from sparsecore import Session
from sparsecore.tasks import load_data, sample_glue_dir

FFN = r"re:.*encoder\.layer\.\d+\.(intermediate|output)\.dense\.weight"


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    """Dense MiniLM fine-tuned on 800 bundled SST-2 rows (1 epoch), plus its tokenizer and collator."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    from sparsecore.workflows import train

    out = tmp_path_factory.mktemp("finetuned") / "dense"
    train(model_name_or_path="minilm", task_name="sst2", recipe="dense-finetune",
          recipe_args="num_epochs=1,init_lr=1e-4", max_train_samples=800, max_eval_samples=8,
          per_device_train_batch_size=16, pad_to_max_length=False, max_seq_length=64, save_strategy="no",
          logging_strategy="no", disable_tqdm=True, seed=3, do_train=True, output_dir=out)
    tok = AutoTokenizer.from_pretrained(str(out))
    return AutoModelForSequenceClassification.from_pretrained(str(out)), tok, DataCollatorWithPadding(tok)


def test_one_shot_obs_loses_less_than_magnitude(finetuned):
    from sparsecore.adapters.trainer import make_grad_sampler
    from sparsecore.workflows.features import tokenize_split

    model, tok, collator = finetuned
    train = load_data("sst2", sample_glue_dir()).train
    grads_from = tokenize_split(train.head(800), tok, 64, False)
    held_out = tokenize_split(train.select(range(1200, 1456)), tok, 64, False)

    def loss(m):
        m.eval()
        with torch.no_grad():
            batches = [collator([held_out[j] for j in range(i, min(i + 64, len(held_out)))])
                       for i in range(0, len(held_out), 64)]
            return sum(m(**b).loss.item() * len(b["labels"]) for b in batches) / len(held_out)

    recipes = {
        "magnitude": f"modifiers:\n  - !GMPruningModifier\n    params: ['{FFN}']\n    final_sparsity: 0.7\n"
                     "    global_sparsity: true\n    end_epoch: 1\n",
        "obs": f"modifiers:\n  - !OBSPruningModifier\n    params: ['{FFN}']\n    final_sparsity: 0.7\n"
               "    end_epoch: 1\n    num_grads: 64\n    damp: 1e-5\n    fisher_block_size: 50\n"
               "    grad_sampler_kwargs: {batch_size: 8}\n",
    }
    losses = {"dense": loss(model)}
    for name, recipe in recipes.items():
        pruned = copy.deepcopy(model)
        torch.manual_seed(0)
        sampler = make_grad_sampler(pruned, grads_from, collator, 8, "cpu")
        with Session(recipe, pruned, None, steps_per_epoch=1, grad_sampler=sampler) as session:
            session.batch_start(step=1)
        ffn = [p for n, p in pruned.named_parameters() if n.endswith("dense.weight") and ("intermediate" in n
                                                                                          or ".output.dense" in n)]
        ffn = [p for p in ffn if p.shape[0] != p.shape[1]]  # the 12 FFN matrices (not attention output)
        assert abs(sum(int((p == 0).sum()) for p in ffn) / sum(p.numel() for p in ffn) - 0.7) < 1e-6
        losses[name] = loss(pruned)
    print(losses)
    assert losses["obs"] < losses["magnitude"], losses
