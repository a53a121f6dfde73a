"""torchrun on this machine's CPUs (gloo): 2 ranks train one model, and OBS sees every rank's gradients."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sparsecore.distributed import masks_checksum

GMP = ("modifiers:\n  - !EpochRangeModifier\n    end_epoch: 2\n  - !GMPruningModifier\n    params: __ALL_PRUNABLE__\n"
       "    final_sparsity: 0.7\n    end_epoch: 1.5\n    update_frequency: 0.25\n"
       "  - !DistillationModifier\n    hardness: 0.5\n    temperature: 2.0\n")
OBS = ("modifiers:\n  - !OBSPruningModifier\n    params: __ALL_PRUNABLE__\n    final_sparsity: 0.6\n    end_epoch: 1\n"
       "    num_grads: 7\n    fisher_block_size: 8\n    grad_sampler_kwargs:\n      batch_size: 4\n")


def torchrun(ranks: int, *argv) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                           str(ranks), *map(str, argv)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def train(ranks: int, tiny_model, recipe: Path, out: Path, *extra) -> subprocess.CompletedProcess:
    return torchrun(ranks, "-m", "sparsecore.transformers.text_classification", "--model_name_or_path", tiny_model,
                    "--recipe", recipe, "--distill_teacher", "self", "--do_train", "--do_eval", "--output_dir", out,
                    "--max_train_samples", 256, "--max_eval_samples", 64, "--max_seq_length", 32,
                    "--per_device_train_batch_size", 16, "--save_steps", 4, "--logging_steps", 4,
                    "--disable_tqdm", "true", "--seed", 5, *extra)


def test_two_ranks_train_one_model_with_the_same_masks_and_resume(tiny_model, tmp_path):
    recipe = tmp_path / "gmp.yaml"
    recipe.write_text(GMP)
    out = tmp_path / "ddp"
    proc = train(2, tiny_model, recipe, out)
    assert proc.stdout.count('"encoder_sparsity"') == 1  # one rank reports the metrics
    metrics = json.loads(proc.stdout[proc.stdout.rindex("{\n"):])
    assert abs(metrics["encoder_sparsity"] - 0.7) < 0.01
    state = json.loads((out / "checkpoint-16" / "trainer_state.json").read_text())
    assert state["global_step"] == 16  # 256 rows / (2 ranks × 16) × 2 epochs: each rank saw half the data
    checks = json.loads((out / "sparsecore_ranks.json").read_text())
    assert checks["world_size"] == 2
    assert [c["step"] for c in checks["mask_checks"]] == [0, 2, 4, 6, 8, 10, 12]  # every 0.25 epoch up to 1.5
    assert all(len(set(c["checksums"])) == 1 and len(c["checksums"]) == 2 for c in checks["mask_checks"])
    masks = load_file(out / "checkpoint-16" / "sparsecore_masks.safetensors")
    assert masks_checksum(masks) == checks["mask_checks"][-1]["checksums"][0]
    weights = load_file(out / "model.safetensors")
    assert all(torch.equal(weights[name] == 0, pruned) for name, pruned in masks.items())
    assert not (out / "training_args.bin").exists()  # rank 0 alone wrote the folder (training_args.json)
    logged = [e for e in state["log_history"] if "sparsecore/sparsity" in e]
    assert len(logged) == 7 and logged[-1]["sparsecore/GMPruningModifier/sparsity"] == pytest.approx(0.7, abs=0.01)
    assert all("sparsecore/distill_loss" in e and "sparsecore/task_loss" in e
               for e in state["log_history"] if "loss" in e)

    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(out / "checkpoint-8", resumed / "checkpoint-8")
    train(2, tiny_model, recipe, resumed, "--resume_from_checkpoint", "last")
    again = load_file(resumed / "model.safetensors")
    for name, pruned in masks.items():
        assert torch.equal(again[name] == 0, pruned), name
    for name, w in weights.items():
        assert torch.allclose(again[name], w, atol=1e-5), name


def test_obs_on_two_ranks_gathers_their_gradients_into_one_fisher(tiny_model, tmp_path):
    """Same 7 global gradient samples (rank 0 takes 0, 2, 4, 6; rank 1 takes 1, 3, 5): same masks and weights as
    one rank computing all 7 — through the Python API under torchrun."""
    recipe = tmp_path / "obs.yaml"
    recipe.write_text(OBS)
    script = Path(__file__).with_name("ddp_oneshot.py")
    outs = {}
    for ranks in (1, 2):
        outs[ranks] = tmp_path / f"obs{ranks}"
        flags = {"model_name_or_path": str(tiny_model), "recipe": str(recipe), "output_dir": str(outs[ranks]),
                 "max_train_samples": 64, "max_eval_samples": 32, "max_seq_length": 32, "disable_tqdm": True}
        torchrun(ranks, script, json.dumps(flags))
    one, two = (load_file(outs[r] / "model.safetensors") for r in (1, 2))
    for name, w in one.items():
        assert torch.equal(w == 0, two[name] == 0), name
        assert torch.allclose(w, two[name], atol=1e-6), name
    checks = json.loads((outs[2] / "sparsecore_ranks.json").read_text())["mask_checks"]
    assert len(checks) == 1 and len(set(checks[0]["checksums"])) == 1
    assert not (outs[1] / "sparsecore_ranks.json").exists()  # one process: nothing to compare


def test_upstream_pruning_on_two_ranks(tmp_path):
    """masked_language_modeling under torchrun: hidden-state distillation of a head-less encoder, the masks the same
    on both ranks at every update, one backbone folder written by rank 0."""
    from test_upstream import GMP, tiny

    from sparsecore.tasks import load_data, sample_glue_dir

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(t[0] for t in load_data("sst2", sample_glue_dir()).evals["validation"].texts[:128]))
    base = tiny(tmp_path / "encoder", "BertModel")
    out = tmp_path / "backbone"
    proc = torchrun(2, "-m", "sparsecore.transformers.masked_language_modeling", "--model_name_or_path", base,
                    "--train_file", corpus, "--recipe", GMP, "--output_dir", out, "--max_seq_length", 32,
                    "--per_device_train_batch_size", 16, "--save_strategy", "no", "--disable_tqdm")
    assert proc.stdout.count('"objective": "distill"') == 1  # one rank reports
    checks = json.loads((out / "sparsecore_ranks.json").read_text())
    assert checks["world_size"] == 2 and len(checks["mask_checks"]) == 3  # updates at 0, 0.25 and 0.5 epochs
    assert all(len(set(c["checksums"])) == 1 and len(c["checksums"]) == 2 for c in checks["mask_checks"])
    report = json.loads((out / "sparsity_report.json").read_text())
    encoder = [r for r in report["params"] if r["name"].startswith("encoder.")]
    assert len(encoder) == 12 and all(abs(r["sparsity"] - 0.5) < 0.01 for r in encoder)
