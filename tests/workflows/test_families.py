"""Every model family end to end on small random-init models: prune → QAT → export → Pipeline on ONNX Runtime
and on our engine. No weights are downloadable here: configs come from transformers, tokenizers are MiniLM's
WordPiece or trained on the bundled SST-2 sample (byte-level BPE for RoBERTa, Unigram for XLM-R)."""

import json

import numpy as np
import onnx
import pytest
import torch

from sparsecore import Pipeline
from sparsecore.errors import SparsecoreError
from sparsecore.families import FAMILIES, family_of
from sparsecore.tasks import load_data, sample_glue_dir
from sparsecore.workflows import export, oneshot, train

SIZE = dict(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=80)
FAST = dict(task_name="sst2", max_eval_samples=32, max_seq_length=32, disable_tqdm=True, per_device_eval_batch_size=32)
SPECIAL = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def texts(n=48):
    return [t[0] for t in load_data("sst2", sample_glue_dir()).evals["validation"].texts[:n]]


def _trained_tokenizer(kind: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import RobertaTokenizerFast, XLMRobertaTokenizerFast

    sentences = [t[0] for t in load_data("sst2", sample_glue_dir()).train.texts]
    if kind == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer, tok.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=1200, special_tokens=SPECIAL,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(sentences, trainer)
        tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
        cls = RobertaTokenizerFast
    else:
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer, tok.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
        tok.train_from_iterator(sentences, trainers.UnigramTrainer(vocab_size=1200, special_tokens=SPECIAL,
                                                                   unk_token="<unk>"))
        tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                                           special_tokens=[("<s>", 0), ("</s>", 2)])
        cls = XLMRobertaTokenizerFast
    return cls(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
               mask_token="<mask>", cls_token="<s>", sep_token="</s>")


def _model(model_type: str):
    import transformers as hf

    from sparsecore.adapters.models import minilm_path

    wordpiece = lambda: hf.AutoTokenizer.from_pretrained(str(minilm_path()))  # noqa: E731
    if model_type == "bert":
        return hf.BertForSequenceClassification(hf.BertConfig(**SIZE)), wordpiece()
    if model_type in ("roberta", "xlm-roberta"):
        tok = _trained_tokenizer("bpe" if model_type == "roberta" else "unigram")
        config_cls, model_cls = ((hf.RobertaConfig, hf.RobertaForSequenceClassification) if model_type == "roberta"
                                 else (hf.XLMRobertaConfig, hf.XLMRobertaForSequenceClassification))
        config = config_cls(**SIZE, vocab_size=len(tok), pad_token_id=1, bos_token_id=0, eos_token_id=2)
        return model_cls(config), tok
    if model_type == "electra":  # embedding width ≠ hidden width: the embeddings_project Linear
        return hf.ElectraForSequenceClassification(hf.ElectraConfig(**SIZE, embedding_size=16)), wordpiece()
    config = hf.DistilBertConfig(n_layers=2, dim=32, n_heads=2, hidden_dim=64, max_position_embeddings=80)
    return hf.DistilBertForSequenceClassification(config), wordpiece()


MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "electra", "distilbert")


@pytest.fixture(scope="module", params=MODEL_TYPES)
def pruned(request, tmp_path_factory):
    """A random-init classifier of the family, one-shot pruned to 70% and exported."""
    torch.manual_seed(0)
    model, tokenizer = _model(request.param)
    family = family_of(request.param)
    with torch.no_grad():  # logits of order 1 (random init gives ~0.01), so int8 errors are measurable
        model.get_submodule(family.head[1]).weight.mul_(100.0)
    root = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    recipe = (f"modifiers:\n  - !GMPruningModifier\n    params: ['{family.encoder_linears[0]}']\n"
              "    final_sparsity: 0.7\n    end_epoch: 1\n")
    result = oneshot(model_name_or_path=root / "base", recipe=recipe, output_dir=root / "pruned", **FAST)
    return request.param, result, export(model_path=result.output_dir)


def test_prune_and_export(pruned):
    model_type, result, exported = pruned
    family = family_of(model_type)
    rows = result.sparsity["params"]
    assert len(rows) == 2 * 6 and all(abs(r["sparsity"] - 0.7) < 2e-3 for r in rows)  # every block Linear, only those
    assert exported.report["passed"] and exported.report["sparsity_preserved"]
    graph = onnx.load(str(exported.onnx_path), load_external_data=False).graph
    assert tuple(i.name for i in graph.input) == family.onnx_inputs
    from sparsecore.deploy.model_folder import locate

    offset = 2 if family.positions == "after_padding" else 0  # RoBERTa positions start at pad_token_id + 1 = 2
    assert locate(exported.deployment).max_positions == 80 - offset  # every family here has 80 position rows


def test_pipeline_and_our_engine_agree(pruned):
    _, result, exported = pruned
    ort = Pipeline.create(model_path=exported.deployment, batch_size=16)
    ours = Pipeline.create(model_path=exported.deployment, batch_size=16, engine="sparsecore")
    a, b = ours.logits(texts()), ort.logits(texts())
    assert a.shape == (48, 2) and np.abs(a - b).max() <= 1e-4
    assert [r["label"] for r in ours(texts(8))] == [r["label"] for r in ort(texts(8))]


@pytest.fixture(scope="module")
def quantized(pruned, tmp_path_factory):
    """The pruned model QAT fine-tuned (zeros held, int8 fake-quant) and exported in integer form."""
    model_type, result, _ = pruned
    family = family_of(model_type)
    recipe = (f"modifiers:\n  - !ConstantPruningModifier\n    params: ['{family.encoder_linears[0]}']\n"
              "  - !QuantizationModifier\n    num_calibration_steps: 2\n    disable_quantization_observer_epoch: 0.5\n"
              "  - !EpochRangeModifier\n    end_epoch: 1\n")
    qat = train(model_name_or_path=result.output_dir, recipe=recipe, output_dir=tmp_path_factory.mktemp("qat") / "m",
                do_train=True, max_train_samples=64, per_device_train_batch_size=16, save_strategy="no", **FAST)
    return result, qat, export(model_path=qat.output_dir)


def test_quantization_aware_training_and_integer_export(quantized):
    result, qat, exported = quantized
    assert qat.metrics["encoder_sparsity"] == pytest.approx(result.metrics["encoder_sparsity"], abs=1e-6)
    assert qat.files["quantization"].is_file()
    assert exported.quantized and exported.report["passed"]
    assert "MatMulInteger" in {n.op_type for n in onnx.load(str(exported.onnx_path)).graph.node}
    ort = Pipeline.create(model_path=exported.deployment, batch_size=16).logits(texts())
    ours = Pipeline.create(model_path=exported.deployment, batch_size=16, engine="sparsecore").logits(texts())
    spread = np.abs(ort).max()  # measured: our engine's int8 logits equal ONNX Runtime's exactly on every family
    assert np.median(np.abs(ours - ort)) <= 1e-3 * spread and np.abs(ours - ort).max() <= 0.05 * spread


def test_deepsparse_runs_the_integer_export(quantized, tmp_path):
    from deepsparse_run import deepsparse_engine_logits

    _, _, exported = quantized
    feeds = _fixed_length_feeds(exported)
    ds = deepsparse_engine_logits(exported.onnx_path, feeds, tmp_path, 16)
    ort = Pipeline.create(model_path=exported.deployment).engine(feeds)
    spread = np.abs(ort).max()  # measured: equal on four families, DistilBERT's median 1.6% of the range off
    assert np.median(np.abs(ds - ort)) <= 0.05 * spread and np.abs(ds - ort).max() <= 0.25 * spread


def test_an_unsupported_model_type_is_one_clear_error(tmp_path):
    import transformers as hf

    hf.GPT2ForSequenceClassification(hf.GPT2Config(n_layer=1, n_embd=16, n_head=2)).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(SparsecoreError, match="model type 'gpt2' is not a supported encoder family .*use one of: "
                                              "bert, roberta, xlm-roberta, electra, distilbert"):
        oneshot(model_name_or_path=tmp_path / "gpt2", recipe="dense-finetune", output_dir=tmp_path / "out", **FAST)
    assert not (tmp_path / "out").exists()
    assert set(FAMILIES) == {"bert", "roberta", "electra", "distilbert"}
    assert json.loads((tmp_path / "gpt2" / "config.json").read_text())["model_type"] == "gpt2"


def _fixed_length_feeds(exported, n=32, length=32) -> dict:
    from transformers import AutoTokenizer

    names = [i.name for i in onnx.load(str(exported.onnx_path), load_external_data=False).graph.input]
    enc = AutoTokenizer.from_pretrained(str(exported.deployment))(texts(n), padding="max_length", truncation=True,
                                                                  max_length=length, return_tensors="np")
    return {n: enc[n].astype(np.int64) if n in enc else np.zeros_like(enc["input_ids"]) for n in names}


def test_deepsparse_runs_every_family(pruned, tmp_path):
    from deepsparse_run import deepsparse_engine_logits

    _, _, exported = pruned
    feeds = _fixed_length_feeds(exported)
    ort = Pipeline.create(model_path=exported.deployment).engine(feeds)
    got = deepsparse_engine_logits(exported.onnx_path, feeds, tmp_path, 16)
    assert got.shape == ort.shape == (32, 2) and np.abs(got - ort).max() <= 1e-4
