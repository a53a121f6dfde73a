import numpy as np
import pytest
import torch


def _torch_logits(model_dir, texts, max_length=128):
    """Reference logits straight from the trained PyTorch folder (HF model + tokenizer)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), 64):
            enc = tok(texts[i:i + 64], truncation=True, max_length=max_length, padding=True, return_tensors="pt")
            out.append(model(**enc).logits.numpy())
    return np.concatenate(out)


@pytest.fixture
def torch_logits():
    return _torch_logits
