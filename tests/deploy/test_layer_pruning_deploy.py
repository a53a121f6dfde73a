"""A 12-layer BERT cut to 6 by !LayerPruningModifier: the folder, the ONNX export and every engine run 6 layers."""

import json

import numpy as np
import onnx
import pytest
import torch
from deepsparse_run import deepsparse_engine_logits

from sparsecore import Pipeline
from sparsecore.deploy.ort_session import ort_session
from sparsecore.tasks import load_data, sample_glue_dir

DROP = [1, 3, 5, 7, 9, 10]  # the oBERT 6-layer recipes' choice
RECIPE = f"""
modifiers:
  - !LayerPruningModifier
    layers: [{', '.join(f'bert.encoder.layer.{i}' for i in DROP)}]
    start_epoch: -1.0
    end_epoch: -1.0
    update_frequency: -1.0
  - !GMPruningModifier
    params: ['re:bert.encoder.layer.*.(intermediate|output).dense.weight']
    init_sparsity: 0.0
    final_sparsity: 0.8
    start_epoch: 0
    end_epoch: 1
    update_frequency: 1
    log_types: __ALL__
"""


@pytest.fixture(scope="module")
def cut_bert(tmp_path_factory):
    """Random-init 12-layer BERT (small widths, MiniLM's tokenizer) → one-shot recipe → export."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from sparsecore.adapters.models import minilm_path
    from sparsecore.workflows import export, train

    root = tmp_path_factory.mktemp("bert12")
    torch.manual_seed(0)
    config = BertConfig(num_hidden_layers=12, hidden_size=64, num_attention_heads=4, intermediate_size=128,
                        max_position_embeddings=128, num_labels=2)
    BertForSequenceClassification(config).save_pretrained(root / "base")
    AutoTokenizer.from_pretrained(str(minilm_path())).save_pretrained(root / "base")
    recipe = root / "cut.yaml"
    recipe.write_text(RECIPE)
    out = root / "cut"
    train(model_name_or_path=root / 'base', task_name="sst2", recipe=recipe, one_shot=True, do_eval=True,
          max_eval_samples=16, max_seq_length=64, output_dir=out)
    export(model_path=out)
    return out


def texts(n=64):
    return [t[0] for t in load_data("sst2", sample_glue_dir()).evals["validation"].texts[:n]]


def test_the_folder_is_an_ordinary_six_layer_bert(cut_bert):
    from transformers import AutoModelForSequenceClassification

    config = json.loads((cut_bert / "config.json").read_text())
    assert config["num_hidden_layers"] == 6
    assert config["sparsecore_layer_pruning"]["kept_original_layers"] == [0, 2, 4, 6, 8, 11]
    model = AutoModelForSequenceClassification.from_pretrained(str(cut_bert))
    assert len(model.bert.encoder.layer) == 6
    w = model.bert.encoder.layer[5].intermediate.dense.weight
    assert int((w == 0).sum()) == int(0.8 * w.numel() + 0.5)


def test_the_onnx_export_has_six_layers(cut_bert):
    graph = onnx.load(str(cut_bert / "deployment" / "model.onnx")).graph
    assert sum(n.op_type == "Softmax" for n in graph.node) == 6  # one attention softmax per layer
    assert sum(n.op_type == "Erf" for n in graph.node) == 6  # one GELU per layer


@pytest.mark.parametrize("engine", ["onnxruntime", "sparsecore"])
def test_every_engine_runs_the_cut_model_like_pytorch(cut_bert, torch_logits, engine):
    rows = texts()
    want = torch_logits(cut_bert, rows)
    got = Pipeline.create(model_path=cut_bert, engine=engine, batch_size=16).logits(rows)
    assert got.shape == want.shape == (64, 2)
    assert np.max(np.abs(got - want)) < 1e-4


def test_deepsparse_runs_the_cut_model(cut_bert, tmp_path):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(cut_bert / "deployment" / "tokenizer.json"))
    tok.enable_padding(length=64)
    tok.enable_truncation(max_length=64)
    enc = tok.encode_batch(texts(32))
    feeds = {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
             "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
             "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64)}
    got = deepsparse_engine_logits(cut_bert / "deployment" / "model.onnx", feeds, tmp_path, 16)
    want = ort_session(cut_bert / "deployment" / "model.onnx").run(None, feeds)[0]
    assert got.shape == (32, 2) and np.max(np.abs(got - want)) < 1e-3
