"""Siamese (bi-encoder) pair classifiers: the forward is the head on each text's own mean-pooled embedding,
training holds a backbone's zeros, the folder saves and loads again, the export runs on ONNX Runtime and
DeepSparse with the model's scores, and bad combinations are one-line errors."""

import json

import numpy as np
import pytest
import torch

from sparsecore.adapters.models import load_classifier
from sparsecore.adapters.pair_encoder import MARKER, PairCollator, mean_pool
from sparsecore.errors import SparsecoreError
from sparsecore.folders import TrainingInfo
from sparsecore.workflows import train

PAIRS = [("a cat sat on the mat", "a cat is sitting on a mat", 4.6), ("he plays the guitar", "she eats rice", 0.2),
         ("the market fell today", "stocks dropped sharply today", 3.8), ("it is raining", "the sun is out", 0.8),
         ("a man rides a horse", "a person is riding a horse", 4.4), ("dogs bark", "an old piano", 0.0),
         ("we met at noon", "we met at midday", 5.0), ("the film was long", "the movie ran for hours", 3.9)]
FAST = {"max_seq_length": 32, "per_device_train_batch_size": 4, "per_device_eval_batch_size": 3,
        "disable_tqdm": True, "save_strategy": "no", "logging_strategy": "no", "pad_to_max_length": False}


def write_pairs(folder, classes: bool = False):
    """A csv of 32 text pairs: a similarity score 0-5 (or, ``classes``, 'same'/'different')."""
    rows = ["sentence1,sentence2,label"]
    for i in range(4):
        for a, b, score in PAIRS:
            label = ("same" if score > 2.5 else "different") if classes else f"{score}"
            rows.append(f"{a} {'!' * i},{b},{label}")
    path = folder / ("classes.csv" if classes else "scores.csv")
    path.write_text("\n".join(rows) + "\n")
    return path


def sparse_backbone(tiny_model, folder, sparsity=0.5):
    """The tiny BERT's encoder with ``sparsity`` of every block Linear zeroed (a backbone, no head)."""
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(tiny_model))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".layer." in name and name.endswith("weight") and p.dim() == 2:
                p[torch.rand_like(p) < sparsity] = 0.0
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(tiny_model)).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("problem_type, labels", [("regression", []), ("single_label_classification", ["a", "b"])])
def test_forward_is_the_head_on_each_texts_own_mean_pooled_embedding(tiny_model, problem_type, labels):
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    model = load_classifier(str(tiny_model), problem_type, labels, pair_encoding="siamese",
                            label_range=(0.0, 5.0)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    first, second = ["a short one", "a much longer sentence than the other side has"], ["tiny", "also short"]
    a, b = tokenizer(first, padding=True, return_tensors="pt"), tokenizer(second, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(input_ids=a["input_ids"], attention_mask=a["attention_mask"], input_ids_b=b["input_ids"],
                       attention_mask_b=b["attention_mask"]).logits
        for row in range(2):  # each text alone, no padding at all
            u, v = (mean_pool(model.encoder_model(**{k: t[k][row:row + 1, :int(t["attention_mask"][row].sum())]
                                                      for k in ("input_ids", "attention_mask")}).last_hidden_state,
                              torch.ones(1, int(t["attention_mask"][row].sum()))) for t in (a, b))
            if problem_type == "regression":
                want = 5.0 * torch.nn.functional.cosine_similarity(u, v) + 0.0
            else:
                want = model.head(torch.cat([u, v, (u - v).abs(), u * v], -1))
            torch.testing.assert_close(logits[row], want.reshape(-1), atol=2e-5, rtol=1e-5)
    assert logits.shape == (2, 1 if problem_type == "regression" else 2)


def test_pair_collator_pads_each_side_to_its_own_longest(tiny_model):
    from transformers import AutoTokenizer

    collate = PairCollator(AutoTokenizer.from_pretrained(str(tiny_model)))
    batch = collate([{"input_ids": [101, 5, 102], "attention_mask": [1, 1, 1], "input_ids_b": [101, 102],
                      "attention_mask_b": [1, 1], "labels": 1.5},
                     {"input_ids": [101, 102], "attention_mask": [1, 1], "input_ids_b": [101, 7, 8, 9, 102],
                      "attention_mask_b": [1, 1, 1, 1, 1], "labels": 0.5}])
    assert batch["input_ids"].tolist() == [[101, 5, 102], [101, 102, 0]]
    assert batch["attention_mask_b"].tolist() == [[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [1.5, 0.5]


def test_transfer_holds_the_backbones_zeros_and_the_folder_loads_again(tiny_model, tmp_path, caplog):
    backbone = sparse_backbone(tiny_model, tmp_path / "backbone")
    data = write_pairs(tmp_path)
    out = tmp_path / "siamese"
    with caplog.at_level("WARNING", logger="sparsecore"):
        result = train(model_name_or_path=backbone, train_file=data, validation_file=data, pair_encoding="siamese",
                       recipe="transfer", recipe_args="num_epochs=2,init_lr=1e-3", output_dir=out, **FAST)
    assert "fresh one for 1 label was added (head.weight, head.bias)" in caplog.text
    assert result.metrics["encoder_sparsity"] >= 0.49  # every zero of the backbone held through training
    config = json.loads((out / "config.json").read_text())
    assert config[MARKER] == "siamese" and config["architectures"] == ["BertModel"]
    assert TrainingInfo.read(out).pair_encoding == "siamese"
    again = train(model_name_or_path=out, validation_file=data, train_file=data, do_eval=True,
                  output_dir=tmp_path / "again", **FAST)  # the folder says siamese: no flag needed
    assert again.metrics["eval_pearson"] == pytest.approx(result.metrics["eval_pearson"], abs=1e-5)
    assert again.metrics["eval_loss"] == pytest.approx(result.metrics["eval_loss"], rel=1e-4)


def test_classification_of_pairs_learns_the_training_rows(tiny_model, tmp_path):
    data = write_pairs(tmp_path, classes=True)
    result = train(model_name_or_path=tiny_model, train_file=data, validation_file=data, pair_encoding="siamese",
                   num_train_epochs=30, learning_rate=3e-3, output_dir=tmp_path / "out", **FAST)
    assert result.metrics["eval_accuracy"] >= 0.9  # 32 rows, 8 distinct pairs: a working head fits them


def test_bad_combinations_are_one_line_errors(tiny_model, tmp_path):
    data = write_pairs(tmp_path)
    single = tmp_path / "single.csv"
    single.write_text("text,label\ngood,1\nbad,0\n")
    with pytest.raises(SparsecoreError, match="needs text pairs"):
        train(model_name_or_path=tiny_model, train_file=single, validation_file=single, pair_encoding="siamese",
              output_dir=tmp_path / "a", **FAST)
    with pytest.raises(SparsecoreError, match="--pair_encoding 'both'"):
        train(model_name_or_path=tiny_model, train_file=data, validation_file=data, pair_encoding="both",
              output_dir=tmp_path / "b", **FAST)
    out = tmp_path / "siamese"
    train(model_name_or_path=tiny_model, train_file=data, validation_file=data, pair_encoding="siamese",
          max_steps=1, output_dir=out, **FAST)
    with pytest.raises(SparsecoreError, match="holds a siamese pair classifier"):
        train(model_name_or_path=out, train_file=data, validation_file=data, pair_encoding="cross",
              output_dir=tmp_path / "c", **FAST)
    with pytest.raises(SparsecoreError, match="the teacher is a cross pair classifier, the student siamese"):
        train(model_name_or_path=out, train_file=data, validation_file=data, distill_teacher=tiny_model,
              recipe="minilm-gmp80-demo", output_dir=tmp_path / "d", **FAST)
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


@pytest.mark.parametrize("classes", [True, False])
def test_export_runs_each_text_alone_with_the_models_scores(tiny_model, tmp_path, classes):
    """The exported graph takes input_ids/attention_mask and input_ids_b/attention_mask_b of any two lengths;
    the Pipeline tokenizes each text alone and gets the PyTorch model's scores on ONNX Runtime and on our
    engine (both sides as one batch of real tokens, mean-pooled, the pair head)."""
    from transformers import AutoTokenizer

    from sparsecore import Pipeline
    from sparsecore.workflows import export

    backbone = sparse_backbone(tiny_model, tmp_path / "backbone")
    data = write_pairs(tmp_path, classes=classes)
    out = tmp_path / "siamese"
    train(model_name_or_path=backbone, train_file=data, validation_file=data, pair_encoding="siamese",
          recipe="transfer", recipe_args="num_epochs=1,init_lr=1e-3", output_dir=out, **FAST)
    result = export(model_path=out)
    assert result.report["max_abs_diff"] <= 1e-4 and result.report["sparsity_preserved"]
    info = json.loads((result.deployment / "sparsecore_deployment.json").read_text())
    assert info["pair_encoding"] == "siamese" and info["text_pairs"] is True
    pairs = [[a, b] for a, b, _ in PAIRS[:5]]
    pipe = Pipeline.create(model_path=result.deployment, engine="onnxruntime", batch_size=2)
    got = pipe.logits(pairs)
    model = load_classifier(str(out), *(("single_label_classification", ["different", "same"]) if classes
                                        else ("regression", []))).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    a = tokenizer([p[0] for p in pairs], padding=True, return_tensors="pt")
    b = tokenizer([p[1] for p in pairs], padding=True, return_tensors="pt")
    with torch.no_grad():
        want = model(input_ids=a["input_ids"], attention_mask=a["attention_mask"], input_ids_b=b["input_ids"],
                     attention_mask_b=b["attention_mask"]).logits.numpy()
    assert abs(got - want).max() < 1e-4
    if classes:
        assert {r["label"] for r in pipe(pairs)} <= {"different", "same"}
    ours = Pipeline.create(model_path=result.deployment, engine="sparsecore", batch_size=2)
    assert not ours.engine.describe()["delegated"]  # the 50% sparse Linears run on our kernels
    assert abs(ours.logits(pairs) - want).max() < 1e-4
    feeds = pipe._features(pairs[:2])  # left padding: every position runs, the pooling weighs by the mask
    left = {n: np.stack([np.roll(row, int((m == 0).sum())) for row, m in
                         zip(a, feeds["attention_mask_b" if n.endswith("_b") else "attention_mask"])])
            for n, a in feeds.items()}
    assert (left["attention_mask"][:, 0] == 0).any() or (left["attention_mask_b"][:, 0] == 0).any()
    assert abs(ours.engine(left) - pipe.engine.session.run(None, left)[0]).max() < 1e-4
    with pytest.raises(SparsecoreError, match="trained on sentence pairs but got single texts"):
        pipe("one text")


def test_deepsparse_runs_a_siamese_export_with_onnx_runtimes_scores(tiny_model, tmp_path):
    """The real DeepSparse 1.8 (its own environment) compiles the two-input-pair graph and agrees with ORT."""
    from deepsparse_run import deepsparse_engine_logits, deepsparse_python

    from sparsecore import Pipeline
    from sparsecore.workflows import export

    deepsparse_python()  # skips with the reason when the environment is absent
    data = write_pairs(tmp_path, classes=True)
    out = tmp_path / "siamese"
    train(model_name_or_path=sparse_backbone(tiny_model, tmp_path / "backbone"), train_file=data,
          validation_file=data, pair_encoding="siamese", recipe="transfer", recipe_args="num_epochs=1,init_lr=1e-3",
          output_dir=out, **FAST)
    deployment = export(model_path=out).deployment
    pipe = Pipeline.create(model_path=deployment, engine="onnxruntime", batch_size=4, sequence_length=16)
    feeds = pipe._features([[a, b] for a, b, _ in PAIRS[:4]])
    assert feeds["input_ids"].shape == feeds["input_ids_b"].shape == (4, 16)
    got = deepsparse_engine_logits(deployment / "model.onnx", feeds, tmp_path, batch=4)
    np.testing.assert_allclose(got, pipe.engine.session.run(None, feeds)[0], atol=1e-4)


def test_transfer_quant_of_a_siamese_model_exports_and_runs_on_onnx_runtime(tiny_model, tmp_path):
    """The built-in transfer-quant recipe (it excludes the pooler's Tanh) quantizes the siamese model: the pooler it
    keeps but never runs gets no quantizer; the integer export passes its lockstep validation; our engine, which
    runs float siamese exports, says so in one line."""
    from sparsecore import Pipeline
    from sparsecore.workflows import export

    data = write_pairs(tmp_path, classes=True)
    out = tmp_path / "siamese-quant"
    train(model_name_or_path=sparse_backbone(tiny_model, tmp_path / "backbone"), train_file=data,
          validation_file=data, pair_encoding="siamese", recipe="transfer-quant", output_dir=out,
          recipe_args="num_epochs=2,init_lr=1e-3,quantization_start_epoch=1,observer_freeze_epoch=1.5", **FAST)
    result = export(model_path=out)
    assert result.quantized and result.report["free_running"]["label_agreement"] >= 0.9
    pipe = Pipeline.create(model_path=result.deployment, engine="onnxruntime")
    assert pipe([["a cat sat", "a cat sits"]])[0]["label"] in ("different", "same")
    with pytest.raises(SparsecoreError, match="runs float siamese pair classifiers; this export is quantized"):
        Pipeline.create(model_path=result.deployment, engine="sparsecore")


def test_a_checkpoint_resumes_with_its_encoding_and_exports_as_pairs(tiny_model, tmp_path):
    """A siamese run's checkpoint resumes as siamese without the flag, refuses --pair_encoding cross in one line,
    and exports (no sparsecore_training.json in it) as a pair deployment."""
    from sparsecore.workflows import export

    data = write_pairs(tmp_path)
    out = tmp_path / "run"
    flags = {**FAST, "save_strategy": "steps", "save_steps": 4, "train_file": data, "validation_file": data}
    train(model_name_or_path=tiny_model, pair_encoding="siamese", max_steps=4, output_dir=out, **flags)
    checkpoint = out / "checkpoint-4"
    with pytest.raises(SparsecoreError, match="the checkpoint is a siamese pair classifier, this run cross"):
        train(model_name_or_path=tiny_model, pair_encoding="cross", max_steps=8, output_dir=out,
              resume_from_checkpoint=str(checkpoint), **flags)
    resumed = train(model_name_or_path=tiny_model, max_steps=8, output_dir=out, resume_from_checkpoint=str(checkpoint),
                    **flags)
    assert TrainingInfo.read(out).pair_encoding == "siamese" and "eval_pearson" in resumed.metrics
    deployment = export(model_path=checkpoint, output_dir=tmp_path / "deployment", sequence_length=32).deployment
    info = json.loads((deployment / "sparsecore_deployment.json").read_text())
    assert info["pair_encoding"] == "siamese" and info["text_pairs"] is True


def test_the_kept_pooler_is_selected_by_no_recipe_and_quantized_by_no_site(tiny_model, tmp_path):
    from sparsecore.adapters.batches import lengths_of
    from sparsecore.quant.sites import select_sites
    from sparsecore.selectors import ALL_PRUNABLE, resolve_params
    from sparsecore.workflows.sensitivity import sensitivity

    model = load_classifier(str(tiny_model), "regression", [], pair_encoding="siamese")
    names = [n for n, _ in resolve_params(model, (ALL_PRUNABLE, "re:.*dense.weight"), "test")]
    assert names and not any("pooler" in n for n in names) and "head.weight" in names
    sites = select_sites(model, submodules=None, exclude_types=("Tanh",), ignore=None, embeddings=False,
                         where="test")
    assert sites and not any("pooler" in s.name for s in sites)
    import datasets

    assert lengths_of(datasets.Dataset.from_dict({"input_ids": [[1, 2]], "length": [5]})) == [5]
    out = tmp_path / "siamese"
    data = write_pairs(tmp_path, classes=True)  # two labels, as sst2
    train(model_name_or_path=tiny_model, train_file=data, validation_file=data, pair_encoding="siamese",
          max_steps=1, output_dir=out, **FAST)
    with pytest.raises(SparsecoreError, match="is a siamese pair classifier but task 'sst2' has one text column"):
        sensitivity(model_path=out, task_name="sst2", sparsities="0.5", methods="magnitude", num_rows=16)
