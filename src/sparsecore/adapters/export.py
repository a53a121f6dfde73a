"""Export a trained text-classification folder (HF layout) to a deployment folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from sparsecore.adapters.models import load_tokenizer
from sparsecore.adapters.quant_attention import quantizable_attention
from sparsecore.deploy.model_folder import SIAMESE_INPUTS
from sparsecore.errors import SparsecoreError
from sparsecore.quant.qat import CONFIG_FILE, QuantState

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


class LogitsOnly(torch.nn.Module):
    """Positional inputs in the family's ONNX input order → logits (what the ONNX graph exposes)."""

    def __init__(self, model: torch.nn.Module, input_names: tuple[str, ...]) -> None:
        super().__init__()
        self.model, self.input_names = model, input_names

    def forward(self, *inputs):
        return self.model(**dict(zip(self.input_names, inputs))).logits


def load_for_export(model_dir: Path):
    """``(model, tokenizer, config, quantization)`` of a trained folder, eager attention (traceable).

    ``quantization`` is the rebuilt fake-quant state (ranges frozen) when the folder was quantized, else None.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from sparsecore.adapters.pair_encoder import is_siamese, load_siamese

    config = AutoConfig.from_pretrained(str(model_dir))
    if is_siamese(config):  # encoder + head; each side its own encoder call in the graph
        model, missing = load_siamese(str(model_dir), config)
        if missing:
            raise SparsecoreError(f"the siamese folder holds no {', '.join(missing)}", str(model_dir),
                                  "export a complete folder written by text_classification")
        model.set_attn_implementation("eager")
        model.sides_apart = True
    elif not any(a.endswith("ForSequenceClassification") for a in (config.architectures or [])):
        raise SparsecoreError("model folder does not hold a sequence classifier", str(model_dir),
                              "export a folder written by sparsecore.transformers.text_classification")
    else:
        try:
            model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), attn_implementation="eager")
        except OSError as exc:
            raise SparsecoreError(f"cannot load the model weights: {str(exc).splitlines()[0]}", str(model_dir),
                                  "export a complete folder written by text_classification") from None
    quantization = None
    if (model_dir / CONFIG_FILE).is_file():
        quantizable_attention(model)
        quantization = QuantState.load(model_dir, model)
    return model.eval(), load_tokenizer(str(model_dir)), config, quantization


def write_tokenizer_files(tokenizer, folder: Path) -> None:
    """tokenizer.json + tokenizer_config.json, plus vocab.txt and special_tokens_map.json (DeepSparse, older HF)."""
    tokenizer.save_pretrained(str(folder))
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    (folder / "vocab.txt").write_text("".join(token + "\n" for token, _ in vocab), encoding="utf-8")
    specials = {k: str(v) for k, v in tokenizer.special_tokens_map.items() if isinstance(v, str)}
    (folder / "special_tokens_map.json").write_text(json.dumps(specials, indent=1))
    for extra in ("chat_template.jinja",):
        (folder / extra).unlink(missing_ok=True)


def _encode(tokenizer, columns: list, names: tuple[str, ...], **kw) -> dict[str, np.ndarray]:
    """The graph's inputs for rows of text ``columns``: a pair as one sequence, or — when ``names`` hold the
    second text's inputs (a siamese graph) — each column tokenized alone, the second as ``…_b``."""
    if names != SIAMESE_INPUTS:
        enc = tokenizer(*columns, truncation=True, return_tensors="np",
                        return_token_type_ids="token_type_ids" in names, **kw)
        return {name: enc[name].astype(np.int64) for name in names}
    feeds = {}
    for column, suffix in zip(columns, ("", "_b")):
        enc = tokenizer(list(column), truncation=True, return_tensors="np", **kw)
        feeds.update({f"{k}{suffix}": enc[k].astype(np.int64) for k in ("input_ids", "attention_mask")})
    return {name: feeds[name] for name in names}


def sample_cases(tokenizer, texts: list[tuple[str, ...]], lengths: tuple[int, ...],
                 names: tuple[str, ...]) -> list[dict[str, np.ndarray]]:
    """Real tokenized inputs: one batch per length (padded/truncated to it) plus one dynamic-length batch (a
    siamese graph's: each text its own length)."""
    columns = list(zip(*texts))
    cases = [_encode(tokenizer, columns, names, max_length=length, padding="max_length") for length in lengths]
    cases.append(_encode(tokenizer, [c[:1] for c in columns], names, max_length=max(lengths)))
    return cases


def padded_batches(tokenizer, texts: list[tuple[str, ...]], max_length: int, size: int,
                   names: tuple[str, ...]) -> list[dict[str, np.ndarray]]:
    """``texts`` in batches of ``size``, each padded to its longest row (what a deployment sees)."""
    return [_encode(tokenizer, list(zip(*texts[start:start + size])), names, max_length=max_length, padding=True)
            for start in range(0, len(texts), size)]


def copy_if_present(src: Path, dst: Path, names: tuple[str, ...]) -> list[str]:
    copied = []
    for name in names:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
            copied.append(name)
    return copied
