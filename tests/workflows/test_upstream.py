"""Upstream pruning on unlabeled text: MLM where the model has a head, hidden-state distillation where it has
none, both summed on request (a fresh MLM head where there is none), a backbone folder that sparse transfer starts
from, and bad input refused in one line."""

import json
import re

import pytest
import torch

from sparsecore.cli.masked_language_modeling import main
from sparsecore.errors import SparsecoreError
from sparsecore.tasks import load_data, sample_glue_dir
from sparsecore.workflows import train
from sparsecore.workflows.upstream import prune_upstream, read_corpus

GMP = ("modifiers:\n  - !GMPruningModifier\n    params: ['re:.*encoder.layer.*(query|key|value|dense).weight']\n"
       "    final_sparsity: 0.5\n    start_epoch: 0\n    end_epoch: 0.5\n    update_frequency: 0.25\n"
       "  - !EpochRangeModifier\n    end_epoch: 1\n")
FAST = {"per_device_train_batch_size": 16, "max_seq_length": 32, "disable_tqdm": True, "save_strategy": "no",
        "logging_steps": 1000}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "sentences.txt"
    texts = [t[0] for t in load_data("sst2", sample_glue_dir()).evals["validation"].texts[:64]]
    path.write_text("\n".join(texts[:32]) + "\n\n  \n" + "\n".join(texts[32:]) + "\n")  # two empty rows
    return path


def tiny(folder, cls_name):
    import transformers
    from transformers import AutoTokenizer, BertConfig

    from sparsecore.adapters.models import minilm_path

    torch.manual_seed(0)
    config = BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=64)
    getattr(transformers, cls_name)(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(minilm_path())).save_pretrained(folder)
    return folder


def test_mlm_backbone_then_sparse_transfer(corpus, tmp_path):
    base = tiny(tmp_path / "mlm-base", "BertForMaskedLM")
    result = prune_upstream(model_name_or_path=str(base), train_file=[str(corpus)], recipe=GMP,
                            output_dir=tmp_path / "backbone", **FAST)
    assert result.objective == "mlm" and result.metrics["train_loss"] > 0
    info = json.loads((tmp_path / "backbone" / "sparsecore_training.json").read_text())
    assert info["corpus"]["texts"] == 64 and info["corpus"]["empty_dropped"] == 2 and info["kind"] == "backbone"
    encoder = [r for r in result.sparsity["params"] if ".encoder." in f".{r['name']}"]
    assert all(abs(r["sparsity"] - 0.5) < 0.01 for r in encoder) and len(encoder) == 12
    assert json.loads((tmp_path / "backbone" / "config.json").read_text())["architectures"] == ["BertModel"]
    assert (tmp_path / "backbone" / "recipe.yaml").is_file()
    assert (tmp_path / "backbone" / "sparsity_report.png").is_file()
    transfer = train(model_name_or_path=str(tmp_path / "backbone"), recipe="transfer", recipe_args="num_epochs=1",
                     task_name="sst2", max_train_samples=32, max_eval_samples=16, max_seq_length=32, do_train=True,
                     disable_tqdm=True, save_strategy="no", output_dir=tmp_path / "transfer")
    assert transfer.metrics["encoder_sparsity"] == pytest.approx(0.5, abs=0.01)  # the zeros held


def test_distillation_when_the_model_has_no_mlm_head(corpus, tmp_path, capsys):
    base = tiny(tmp_path / "encoder", "BertModel")
    main(["--model_name_or_path", str(base), "--train_file", str(corpus), "--recipe", GMP, "--output_dir",
          str(tmp_path / "backbone"), "--per_device_train_batch_size", "16", "--max_seq_length", "32",
          "--save_strategy", "no", "--disable_tqdm"])
    out = capsys.readouterr().out
    printed = json.loads(out[out.index("{\n"):])  # the Trainer logs dict lines before the JSON
    assert printed["objective"] == "distill" and printed["train_loss"] > 0
    assert printed["encoder_sparsity"] == pytest.approx(0.5, abs=0.01)  # the blocks' Linears (not the pooler)


def test_distilling_every_layer_averages_their_token_errors(corpus, tmp_path):
    """``distill_layers="all"``: the mean over layers of each layer's masked token MSE, plus the last layer's pooled
    cosine term (the ``last`` loss uses the last layer's MSE only); the choice is recorded in the backbone folder."""
    from transformers import BertModel

    from sparsecore.adapters.upstream import HiddenStateDistiller

    base = tiny(tmp_path / "encoder", "BertModel")
    teacher, student = BertModel.from_pretrained(base), BertModel.from_pretrained(base)
    with torch.no_grad():
        for w in student.parameters():
            w.add_(0.05 * torch.randn_like(w))
    ids = torch.randint(1000, 2000, (3, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    s_out, t_out = (m(input_ids=ids, attention_mask=mask, output_hidden_states=True) for m in (student, teacher))
    real = mask.unsqueeze(-1).float()

    def mse(h, t):
        return (((h - t) ** 2) * real).sum() / (real.sum() * h.shape[-1])

    pooled = [(h.last_hidden_state * real).sum(1) / real.sum(1) for h in (s_out, t_out)]
    cosine = (1 - torch.nn.functional.cosine_similarity(*pooled, dim=-1)).mean()
    every = torch.stack([mse(h, t) for h, t in zip(s_out.hidden_states[1:], t_out.hidden_states[1:])]).mean()
    for layers, want in (("all", every + cosine), ("last", mse(s_out.last_hidden_state, t_out.last_hidden_state)
                                                   + cosine)):
        got = HiddenStateDistiller(student, teacher, layers)(ids, mask)["loss"]
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert not torch.isclose(every, mse(s_out.last_hidden_state, t_out.last_hidden_state))
    prune_upstream(model_name_or_path=str(base), train_file=[str(corpus)], recipe=GMP, distill_layers="all",
                   output_dir=tmp_path / "backbone", **{**FAST, "save_strategy": "epoch"})
    training = json.loads((tmp_path / "backbone" / "sparsecore_training.json").read_text())
    assert training["objective"] == "distill" and training["distill_layers"] == "all"


def test_mlm_plus_distill_sums_both_losses_on_the_same_masked_input(tmp_path):
    """``mlm+distill``: the masked-language model's own loss plus the distillation loss of its backbone against the
    teacher, both reading the masked ids."""
    from transformers import BertForMaskedLM, BertModel

    from sparsecore.adapters.upstream import MlmDistiller, distillation_loss

    base = tiny(tmp_path / "encoder", "BertModel")
    mlm, teacher = BertForMaskedLM.from_pretrained(base), BertModel.from_pretrained(base)
    with torch.no_grad():
        for w in mlm.bert.parameters():
            w.add_(0.05 * torch.randn_like(w))
    ids = torch.randint(1000, 2000, (3, 9))
    mask = torch.ones_like(ids)
    mask[2, 5:] = 0
    labels = torch.full_like(ids, -100)
    labels[:, 2] = ids[:, 2]
    ids[:, 2] = 103  # [MASK]
    for layers in ("last", "all"):
        got = MlmDistiller(mlm, teacher, layers)(ids, mask, labels=labels)["loss"]
        out = mlm(input_ids=ids, attention_mask=mask, labels=labels)
        backbone = mlm.bert(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        want = out.loss + distillation_loss(backbone, teacher, ids, mask, {}, layers)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        assert out.loss > 1 and want - out.loss > 0  # both terms count


@pytest.mark.parametrize("objective", ["mlm", "mlm+distill"])
def test_mlm_objectives_train_a_fresh_head_where_the_checkpoint_has_none(objective, corpus, tmp_path, caplog):
    from safetensors.torch import load_file

    base = tiny(tmp_path / "encoder", "BertModel")
    result = prune_upstream(model_name_or_path=str(base), train_file=[str(corpus)], recipe=GMP, objective=objective,
                            output_dir=tmp_path / "backbone", **{**FAST, "save_strategy": "epoch"})
    assert result.objective == objective and result.metrics["train_loss"] > 0
    assert "has no masked-language-modelling head: a fresh one is trained" in caplog.text
    training = json.loads((tmp_path / "backbone" / "sparsecore_training.json").read_text())
    assert training["objective"] == objective and ("distill_layers" in training) == (objective == "mlm+distill")
    weights = load_file(tmp_path / "backbone" / "model.safetensors")
    assert set(weights) == set(load_file(base / "model.safetensors"))  # the backbone only, not the fresh head
    assert result.sparsity["total"]["sparsity"] == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("argv, pattern", [
    (["--objective", "mlm-distill"], "--objective"),
    (["--train_file", "{tmp}/none.txt"], "text file not found"),
    (["--train_file", "{empty}"], "no non-empty text"),
    (["--mlm_probability", "1.5"], "--mlm_probability is 1.5"),
    (["--distill_layers", "every"], "--distill_layers"),
])
def test_bad_input_is_one_line(corpus, tmp_path, argv, pattern, capsys):
    base = tiny(tmp_path / "encoder", "BertModel")
    (tmp_path / "empty.txt").write_text("\n \n")
    argv = [a.format(tmp=tmp_path, empty=tmp_path / "empty.txt") for a in argv]
    files = [] if "--train_file" in argv else ["--train_file", str(corpus)]
    with pytest.raises(SystemExit) as exc:
        main(["--model_name_or_path", str(base), *files, *argv, "--output_dir", str(tmp_path / "out")])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert exc.value.code == 2 and len(err) == 1 and pattern in err[0], err
    assert not (tmp_path / "out").exists()


def test_prune_upstream_is_a_workflow_call():
    from sparsecore import workflows

    assert workflows.prune_upstream is prune_upstream and "prune_upstream" in workflows.__all__


def test_corpus_from_tables_folders_and_many_files_skips_label_columns(tmp_path):
    """Text from csv, jsonl and parquet columns, a ``save_to_disk`` folder and a .txt file in one corpus; string label
    columns (by name, or by few distinct values) are not read unless ``--text_column`` names them; a missing column
    and a table of labels only are refused in one line naming the columns."""
    import datasets
    import pandas as pd

    texts = [t[0] for t in load_data("sst2", sample_glue_dir()).evals["validation"].texts[:60]]
    moods = ["positive", "negative"] * 30
    pd.DataFrame({"sentence": texts[:40], "label": moods[:40]}).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame({"text": texts[40:], "verdict": moods[40:], "idx": range(20)}).to_json(
        tmp_path / "b.jsonl", orient="records", lines=True)
    pd.DataFrame({"premise": texts[:30], "hypothesis": texts[30:], "gold": ["entailment", "neutral", "contradiction"]
                  * 10}).to_parquet(tmp_path / "c.parquet")
    datasets.Dataset.from_dict({"sentence": texts[:12], "category": ["x"] * 12}).save_to_disk(str(tmp_path / "d"))
    (tmp_path / "e.txt").write_text("one line\n\nanother line\n")
    files = [str(tmp_path / n) for n in ("a.csv", "b.jsonl", "c.parquet", "d", "e.txt")]
    got, record = read_corpus(files, None, None, pairs="none")
    assert got == texts[:40] + texts[40:] + texts[:30] + texts[30:] + texts[:12] + ["one line", "another line"]
    paired, pair_record = read_corpus(files, None, None)  # default: a two-text-column row is one pair
    assert paired == texts[:40] + texts[40:] + list(zip(texts[:30], texts[30:])) + texts[:12] + [
        "one line", "another line"]
    assert pair_record["pairs"] == 30 and pair_record["files"][2]["as_pairs"] is True
    assert not {"positive", "negative", "entailment", "x"} & set(got)
    read = {f["file"].rsplit("/", 1)[-1]: f for f in record["files"]}
    assert read["a.csv"]["columns"] == ["sentence"] and "label" in read["a.csv"]["label_columns_skipped"]
    assert read["b.jsonl"]["label_columns_skipped"] == {"verdict": "2 distinct values in 20 rows"}
    assert read["c.parquet"]["columns"] == ["premise", "hypothesis"] and "gold" in read["c.parquet"][
        "label_columns_skipped"]
    assert record["texts"] == len(got) and record["empty_dropped"] == 1
    named, _ = read_corpus([files[0]], ["label"], None)  # named: read, labels or not
    assert named == moods[:40]
    assert read_corpus(files, None, 50, pairs="none")[0] == got[:50]
    with pytest.raises(SparsecoreError, match="no text column 'body'.*columns: sentence, label"):
        read_corpus([files[0]], ["body"], None)
    pd.DataFrame({"label": moods}).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(SparsecoreError, match=r"no text column; label-like, not read: label \(named 'label'\)"):
        read_corpus([str(tmp_path / "labels.csv")], None, None)


PARAMS = "['re:.*encoder.layer.*(query|key|value|dense).weight']"
RECIPES = {
    "obs": f"modifiers:\n  - !OBSPruningModifier\n    params: {PARAMS}\n    final_sparsity: 0.5\n    start_epoch: 0\n"
           "    end_epoch: 0.5\n    update_frequency: 0.25\n    num_grads: 8\n    fisher_block_size: 8\n"
           "    grad_sampler_kwargs: {batch_size: 4}\n  - !EpochRangeModifier\n    end_epoch: 1\n",
    "block4": GMP.replace("update_frequency: 0.25\n", "update_frequency: 0.25\n    mask_type: block4\n"),
    "qat": GMP + "  - !QuantizationModifier\n    start_epoch: 0.5\n",
}


@pytest.mark.parametrize("kind", sorted(RECIPES))
def test_obs_block4_and_qat_recipes_prune_a_distilled_backbone(kind, corpus, tmp_path, caplog):
    """OBS samples gradients of the distillation loss; block4 zeros whole groups of four inputs; a QAT run saves the
    plain float weights of the backbone (no wrapper or observer keys) and says how to quantize again."""
    from safetensors.torch import load_file

    base = tiny(tmp_path / "encoder", "BertModel")
    result = prune_upstream(model_name_or_path=str(base), train_file=[str(corpus)], recipe=RECIPES[kind],
                            output_dir=tmp_path / "backbone", **FAST)
    assert result.objective == "distill" and result.metrics["train_loss"] > 0
    weights = load_file(tmp_path / "backbone" / "model.safetensors")
    assert set(weights) == set(load_file(base / "model.safetensors"))  # the backbone's own names only
    pruned = [w for name, w in weights.items()
              if re.fullmatch(r"encoder\.layer.*(query|key|value|dense)\.weight", name)]
    zeros = sum(int((w == 0).sum()) for w in pruned) / sum(w.numel() for w in pruned)
    assert len(pruned) == 12 and zeros == pytest.approx(0.5, abs=0.01)  # OBS ranks globally, GMP layer by layer
    if kind == "block4":
        for w in pruned:
            groups = (w.reshape(w.shape[0], -1, 4) == 0).sum(-1)
            assert set(groups.unique().tolist()) == {0, 4}  # every group of four inputs all zero or all kept
    quant_notes = [r.message for r in caplog.records if "quantization-aware upstream" in r.message]
    assert len(quant_notes) == (kind == "qat")


def test_an_upstream_run_resumes_from_its_checkpoint(corpus, tmp_path):
    """Two epochs saved each epoch; resuming a copy of the first epoch's checkpoint ("last": the newest complete
    one) restores the recipe's state — no mask update after the schedule ended — and ends with the same masks and
    weights as the run that was not interrupted."""
    import shutil

    from safetensors.torch import load_file

    base = tiny(tmp_path / "encoder", "BertModel")
    recipe = GMP.replace("end_epoch: 1\n", "end_epoch: 2\n")
    flags = {**FAST, "save_strategy": "epoch"}
    prune_upstream(model_name_or_path=str(base), train_file=[str(corpus)], recipe=recipe,
                   output_dir=tmp_path / "whole", **flags)
    assert sorted(p.name for p in (tmp_path / "whole").glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-8"]
    (tmp_path / "resumed").mkdir()
    shutil.copytree(tmp_path / "whole" / "checkpoint-4", tmp_path / "resumed" / "checkpoint-4")
    prune_upstream(model_name_or_path=str(base), train_file=[str(corpus)], recipe=recipe,
                   output_dir=tmp_path / "resumed", resume_from_checkpoint="last", **flags)

    def updates(run: str) -> list[dict]:
        state = json.loads((tmp_path / run / "checkpoint-8" / "trainer_state.json").read_text())
        return [e for e in state["log_history"] if "sparsecore/sparsity" in e]

    assert [e["step"] for e in updates("whole")] == [0, 1, 2]  # every 0.25 epoch up to 0.5, 4 steps an epoch
    assert updates("resumed") == updates("whole")
    whole, again = (load_file(tmp_path / d / "model.safetensors") for d in ("whole", "resumed"))
    for name, w in whole.items():
        assert torch.equal(again[name] == 0, w == 0), name
        assert torch.allclose(again[name], w, atol=1e-5), name


def test_pair_rows_train_as_sentence_pairs(tmp_path, caplog):
    """A two-text-column table gives pairs (a row with one empty side gives its other text, with two nothing) that
    reach the model as two segments — the second with token type 1, as a pair task's input."""
    import pandas as pd

    from sparsecore.adapters.models import load_tokenizer
    from sparsecore.workflows.upstream import _encoder

    texts = [t[0] for t in load_data("sst2", sample_glue_dir()).evals["validation"].texts[:40]]
    firsts, seconds = texts[:20], texts[20:]
    seconds[3], firsts[5], firsts[7], seconds[7] = "  ", "", "", ""
    pd.DataFrame({"sentence1": firsts, "sentence2": seconds}).to_csv(tmp_path / "pairs.csv", index=False)
    got, record = read_corpus([str(tmp_path / "pairs.csv")], None, None)
    assert record["pairs"] == 17 and record["empty_dropped"] == 1 and len(got) == 19
    assert got[3] == firsts[3] and got[5] == seconds[5] and got[0] == (firsts[0], seconds[0])
    tokenizer = load_tokenizer(str(tiny(tmp_path / "enc", "BertModel")))
    encoded = _encoder(tokenizer, 64)({"text": [g[0] if isinstance(g, tuple) else g for g in got],
                                       "text_pair": [g[1] if isinstance(g, tuple) else None for g in got]})
    assert encoded["input_ids"][0] == tokenizer(firsts[0], seconds[0], truncation=True, max_length=64)["input_ids"]
    assert 1 in encoded["token_type_ids"][0] and set(encoded["token_type_ids"][3]) == {0}
    base = tiny(tmp_path / "encoder", "BertModel")
    result = prune_upstream(model_name_or_path=str(base), train_file=[str(tmp_path / "pairs.csv")], recipe=GMP,
                            output_dir=tmp_path / "backbone", **FAST)
    assert result.metrics["train_loss"] > 0
    info = json.loads((tmp_path / "backbone" / "sparsecore_training.json").read_text())
    assert info["corpus"]["pairs"] == 17 and "17 sentence pairs" in caplog.text
