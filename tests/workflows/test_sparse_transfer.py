"""Sparse transfer from backbones people already have: SparseZoo stubs and download folders resolved offline,
the transfer recipes, and the notes a user gets when starting from a sparse backbone."""

import logging

import pytest
import torch

from sparsecore.adapters.models import resolve_model_path
from sparsecore.adapters.zoo import parse_stub, resolve_stub
from sparsecore.errors import SparsecoreError
from sparsecore.recipe.load import read_recipe_source
from sparsecore.workflows import train

STUB = "zoo:nlp/masked_language_modeling/bert-base/pytorch/huggingface/wikipedia_bookcorpus/pruned80-none"
NAME_STUB = "zoo:bert-base-wikipedia_bookcorpus-pruned80"
CARD = """---
domain: "nlp"
sub_domain: "masked_language_modeling"
architecture: "bert"
sub_architecture: "base"
framework: "pytorch"
repo: "huggingface"
dataset: "wikipedia_bookcorpus"
sparse_tag: "pruned80"
---
# BERT base, 80% pruned upstream
"""
FAST = dict(task_name="sst2", max_train_samples=32, max_eval_samples=16, max_seq_length=32, disable_tqdm=True,
            per_device_train_batch_size=16, save_strategy="no")


def write_download(folder, sparsity=0.8):
    """A SparseZoo download folder as SparseZoo wrote it: training/ (config.json, pytorch_model.bin, tokenizer
    files, recipe.yaml), deployment/, model.onnx, model.md — the backbone without a classification head."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from sparsecore.adapters.models import minilm_path

    torch.manual_seed(0)
    model = BertModel(BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                                 max_position_embeddings=64))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "encoder" in name and name.endswith("weight") and p.dim() == 2:
                p[torch.rand_like(p) < sparsity] = 0.0
    training = folder / "training"
    model.config.save_pretrained(training)
    torch.save(model.state_dict(), training / "pytorch_model.bin")  # as SparseZoo shipped it
    AutoTokenizer.from_pretrained(str(minilm_path())).save_pretrained(training)
    (training / "recipe.yaml").write_text("modifiers:\n  - !ConstantPruningModifier\n    params: __ALL_PRUNABLE__\n")
    (folder / "deployment").mkdir()
    (folder / "model.onnx").write_bytes(b"")
    (folder / "model.md").write_text(CARD)
    return folder


@pytest.fixture(scope="module")
def zoo_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("sparsezoo")
    write_download(root / "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b")  # path-style stubs: a folder per model id
    (root / "neuralmagic").mkdir()
    write_download(root / "neuralmagic" / "bert-base-wikipedia_bookcorpus-pruned80")  # name-style stubs
    return root


def test_stubs_resolve_against_the_local_cache(zoo_cache, monkeypatch):
    monkeypatch.setenv("SPARSEZOO_MODELS_PATH", str(zoo_cache))
    assert parse_stub(STUB)["sparse_tag"] == "pruned80-none" and parse_stub(NAME_STUB) == {
        "name": "bert-base-wikipedia_bookcorpus-pruned80"}
    assert resolve_stub(STUB).name.startswith("0f1e2d3c")
    assert resolve_stub(NAME_STUB).parent.name == "neuralmagic"
    assert resolve_model_path(STUB).endswith("training")  # the loadable model of the download
    assert resolve_model_path(str(resolve_stub(NAME_STUB))).endswith("training")  # a download folder passed as is
    with pytest.raises(SparsecoreError, match=f"not in the local SparseZoo cache \\(looked in {zoo_cache}"):
        resolve_model_path(STUB.replace("pruned80", "pruned95"))
    with pytest.raises(SparsecoreError, match="is not a SparseZoo model stub"):
        resolve_model_path("zoo:nonsense")


def test_stubs_resolve_in_the_default_cache_folder(tmp_path, monkeypatch):
    """Without ``$SPARSEZOO_MODELS_PATH``: ``~/.cache/sparsezoo``, where SparseZoo saved its downloads."""
    monkeypatch.delenv("SPARSEZOO_MODELS_PATH", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    write_download(tmp_path / ".cache" / "sparsezoo" / "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b")
    assert resolve_model_path(STUB) == str(tmp_path / ".cache" / "sparsezoo" / "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
                                           / "training")
    with pytest.raises(SparsecoreError, match=f"looked in {tmp_path / '.cache' / 'sparsezoo'}"):
        resolve_model_path(STUB.replace("pruned80", "pruned95"))


def test_transfer_recipe_stubs_name_the_builtin_transfer_recipes():
    stub = STUB + "?recipe_type=transfer-text_classification"
    assert read_recipe_source(stub)[1] == "builtin:transfer"
    assert read_recipe_source(stub.replace("pruned80", "pruned80_quant"))[1] == "builtin:transfer-quant"


def test_transfer_from_a_zoo_stub_keeps_every_zero_and_says_what_it_loaded(zoo_cache, monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("SPARSEZOO_MODELS_PATH", str(zoo_cache))
    with caplog.at_level(logging.WARNING, logger="sparsecore"):
        result = train(model_name_or_path=STUB, recipe=STUB + "?recipe_type=transfer-text_classification",
                       recipe_args="num_epochs=1", output_dir=tmp_path / "transfer", do_train=True, **FAST)
    said = caplog.text
    assert "holds no classification head: a fresh one for 2 labels was added" in said
    assert "the loaded backbone is" in said and "sparse" in said and "will fill them in" not in said
    assert result.metrics["encoder_sparsity"] == pytest.approx(0.8, abs=0.02)  # the zeros held through training
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sparsecore"):
        train(model_name_or_path=STUB, recipe="dense-finetune", recipe_args="num_epochs=1",
              output_dir=tmp_path / "dense", do_train=True, **FAST)
    assert "no recipe modifier holds these zeros: training will fill them in" in caplog.text


def test_a_sparseml_qat_checkpoint_is_read_as_its_float_weights(tmp_path, caplog):
    """SparseML's QuantWrapper/FakeQuantize keys (``….module.weight``, ``weight_fake_quant.*``,
    ``activation_post_process.*``): the float weights load, the observers are dropped, the run says so."""
    from transformers import BertConfig, BertForSequenceClassification

    from sparsecore.adapters.models import load_classifier, resolve_model_path

    folder = write_download(tmp_path / "qat-download")
    training = folder / "training"
    floats = torch.load(training / "pytorch_model.bin", weights_only=True)
    qat = {}
    for key, tensor in floats.items():
        if key.startswith("encoder.") and key.endswith((".weight", ".bias")) and "LayerNorm" not in key:
            stem, leaf = key.rsplit(".", 1)
            qat[f"{stem}.module.{leaf}"] = tensor
            if leaf == "weight":
                qat[f"{stem}.module.weight_fake_quant.scale"] = torch.ones(tensor.shape[0])
                qat[f"{stem}.module.weight_fake_quant.fake_quant_enabled"] = torch.ones(1, dtype=torch.uint8)
                qat[f"{stem}.quant.activation_post_process.activation_post_process.min_val"] = torch.zeros(())
        else:
            qat[key] = tensor
    torch.save(qat, training / "pytorch_model.bin")
    loading = {}
    model = load_classifier(resolve_model_path(str(folder)), "single_label_classification", ["neg", "pos"],
                            loading=loading)
    assert isinstance(model, BertForSequenceClassification) and isinstance(model.config, BertConfig)
    query = model.bert.encoder.layer[1].attention.self.query.weight
    assert torch.equal(query, floats["encoder.layer.1.attention.self.query.weight"])
    assert loading["qat_observers_dropped"] == 3 * 12 and loading["missing_keys"] == ["classifier.bias",
                                                                                        "classifier.weight"]
    with caplog.at_level(logging.WARNING, logger="sparsecore"):
        train(model_name_or_path=str(folder), recipe="transfer-quant",
              recipe_args="num_epochs=1,quantization_start_epoch=0,observer_freeze_epoch=0.5",
              output_dir=tmp_path / "requant", do_train=True, **FAST)
    assert "is a SparseML quantization-aware (fake-quant) checkpoint: its float weights were loaded" in caplog.text


@pytest.mark.parametrize("kind, weights_file", [("BertForMaskedLM", "model.safetensors"),
                                                ("BertForPreTraining", "pytorch_model.bin")])
def test_sparse_checkpoints_of_other_projects_load_as_backbones(kind, weights_file, tmp_path, caplog):
    """Hugging Face folders as oBERT's upstream checkpoints (``BertForMaskedLM``: ``bert.`` keys, an MLM head, no
    pooler) and Prune-OFA's (``BertForPreTraining``: MLM and next-sentence heads) were published: the encoder loads
    with its zeros, the pre-training heads are dropped, a fresh classification head (and, where missing, pooler) is
    added and said, and the transfer recipe keeps the zeros."""
    import transformers
    from transformers import AutoTokenizer, BertConfig

    from sparsecore.adapters.models import load_classifier, minilm_path

    torch.manual_seed(1)
    config = BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=64)
    upstream = getattr(transformers, kind)(config)
    with torch.no_grad():
        for name, p in upstream.named_parameters():
            if ".encoder." in name and name.endswith("weight") and p.dim() == 2:
                p[torch.rand_like(p) < 0.9] = 0.0
    folder = tmp_path / kind
    if weights_file.endswith(".safetensors"):
        upstream.save_pretrained(folder)
    else:  # the pickle-era layout those checkpoints were published in
        upstream.config.save_pretrained(folder)
        torch.save(upstream.state_dict(), folder / weights_file)
    assert (folder / weights_file).is_file()
    AutoTokenizer.from_pretrained(str(minilm_path())).save_pretrained(folder)
    loading = {}
    model = load_classifier(resolve_model_path(str(folder)), "single_label_classification", ["neg", "pos"],
                            loading=loading)
    source = upstream.state_dict()
    for name, tensor in model.bert.encoder.state_dict().items():
        assert torch.equal(tensor, source[f"bert.encoder.{name}"]), name
    assert {"classifier.weight", "classifier.bias"} <= set(loading["missing_keys"])
    assert any(k.startswith("bert.pooler.") for k in loading["missing_keys"]) == (kind == "BertForMaskedLM")
    with caplog.at_level(logging.WARNING, logger="sparsecore"):
        result = train(model_name_or_path=str(folder), recipe="transfer", recipe_args="num_epochs=1",
                       output_dir=tmp_path / "transfer", do_train=True, **FAST)
    assert "holds no classification head: a fresh one for 2 labels was added" in caplog.text
    assert ("holds no pooler" in caplog.text) == (kind == "BertForMaskedLM")
    assert "the loaded backbone is" in caplog.text
    assert result.metrics["encoder_sparsity"] == pytest.approx(0.9, abs=0.02)
