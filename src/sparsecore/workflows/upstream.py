"""Upstream pruning: sparsify a backbone once, on unlabeled text, for sparse transfer to any task.

:func:`prune_upstream` reads text (``.txt`` lines, or the text columns of csv/tsv/json/jsonl/parquet/arrow files
and ``save_to_disk`` folders — label columns, by name or by their few distinct values, are not read unless
``text_column`` names them; a row read from exactly two text columns is one sentence pair, two segments as a pair
task feeds them, unless ``pairs="none"``), trains the backbone under a recipe (the same modifiers as downstream: GMP, OBS,
block4, QAT, …) and writes a backbone folder without a task head: weights,
tokenizer, ``recipe.yaml``, ``sparsity_report.json/.png`` and ``sparsecore_training.json`` (objective, text used,
loss, time); under ``torchrun``, rank 0 writes it and, when a recipe runs, ``sparsecore_ranks.json`` (every rank's
masks checksum after each mask update). ``resume_from_checkpoint`` (a checkpoint-N folder, or true/last for the
newest complete one in ``output_dir``) restores the weights, the optimizer and the recipe's state (masks,
schedules). The objective:

* ``mlm``: masked-language modelling (15% of tokens masked) with the model's MLM head — a fresh one, trained
  with the backbone, when the checkpoint has none;
* ``distill``: the dense starting model as a frozen teacher; the loss is the mean squared error between the
  student's and the teacher's last hidden states over real tokens (``distill_layers="all"``: every layer's, their
  mean) plus one minus the cosine of their mean-pooled sentence embeddings (what a sentence-embedding model such as
  all-MiniLM-L6-v2, which has no MLM head, is for);
* ``mlm+distill``: the sum of both losses, the teacher reading the same masked text (the Prune-OFA / oBERT
  upstream objective, with hidden states in place of MLM logits);
* ``auto`` (default): ``mlm`` when the checkpoint holds an MLM head, else ``distill``.

The result loads as any model folder (``--model_name_or_path``): a fresh classification head is added, and the
``transfer`` recipe keeps its zeros.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from sparsecore import distributed
from sparsecore.errors import SparsecoreError
from sparsecore.file_checks import check_writable
from sparsecore.workflows.plan import resume_checkpoint

log = logging.getLogger("sparsecore")
OBJECTIVES = ("auto", "mlm", "distill", "mlm+distill")
DISTILL_LAYERS = ("last", "all")  # which layers' token states the distillation matches
PAIRS = ("rows", "none")  # rows: a table row read from exactly two text columns is one sentence pair


@dataclass
class UpstreamResult:
    output_dir: Path
    objective: str
    metrics: dict
    sparsity: dict
    files: dict


LABEL_NAMES = frozenset({"label", "labels", "gold_label", "class", "category", "target", "y"})
MAX_CLASSES = 32  # a string column with at most this many distinct values over 10× as many rows: labels


def _label_like(ds, column: str) -> str | None:
    """Why ``column`` (a string column) holds labels rather than text — its name, or few distinct values over many
    rows — or None."""
    if column.lower() in LABEL_NAMES:
        return f"named {column!r}"
    values = ds.unique(column)
    if len(values) <= MAX_CLASSES and len(ds) >= 10 * len(values):
        return f"{len(values)} distinct values in {len(ds)} rows"
    return None


def read_corpus(files: list[str], columns: list[str] | None, max_rows: int | None,
                pairs: str = "rows") -> tuple[list[str | tuple[str, str]], dict]:
    """The non-empty texts of ``files`` and what was read (files, columns, rows, pairs, empty rows dropped). Without
    ``columns``, a table's text columns are its string columns that are not labels (:func:`_label_like`: skipped
    and listed in the record). ``pairs="rows"``: a table read from exactly two text columns gives one
    ``(first, second)`` pair per row — the two segments a pair task feeds the encoder — or the one non-empty text of
    a row; ``"none"``: every cell is a text of its own."""
    from sparsecore.tasks.columnar import is_text_column
    from sparsecore.tasks.tables import cache_root, open_table

    if not files:
        raise SparsecoreError("no text to train on", "--train_file", "give one or more text/csv/jsonl/parquet files")
    texts, used, empty, paired = [], [], 0, 0
    for name in files:
        path = Path(name).expanduser()
        if path.is_file() and path.suffix == ".txt":
            lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
            used.append({"file": str(path), "columns": ["(lines)"], "rows": len(lines)})
            chunk = lines
        else:
            if not path.exists():
                raise SparsecoreError("text file not found", f"--train_file {name}", "check the path")
            ds = open_table(path, cache_root(None)).ds
            skipped = {}
            if columns:
                wanted = list(columns)
            else:
                strings = [c for c in ds.column_names if is_text_column(ds, c)]
                skipped = {c: why for c in strings if (why := _label_like(ds, c))}
                wanted = [c for c in strings if c not in skipped]
            missing = [c for c in wanted if c not in ds.column_names]
            if missing or not wanted:
                labels = "; label-like, not read: " + ", ".join(f"{c} ({why})" for c, why in skipped.items()) if (
                    skipped) else ""
                raise SparsecoreError(f"no text column {missing[0]!r}" if missing else "no text column" + labels,
                                      f"--train_file {name}", f"columns: {', '.join(ds.column_names)}; pick with "
                                      "--text_column")
            for column, why in skipped.items():
                log.info("%s: column %r not read as text (%s); --text_column picks columns", path.name, column, why)
            as_pairs = pairs == "rows" and len(wanted) == 2
            used.append({"file": str(path), "columns": wanted, "rows": len(ds),
                         **({"as_pairs": True} if as_pairs else {}),
                         **({"label_columns_skipped": skipped} if skipped else {})})
            if as_pairs:
                chunk = []
                for a, b in zip(*(("" if t is None else str(t) for t in ds[c]) for c in wanted)):
                    kept = [t for t in (a, b) if t.strip()]
                    chunk.append(tuple(kept) if len(kept) == 2 else kept[0] if kept else "")
            else:
                chunk = [str(t) for c in wanted for t in ds[c] if t is not None]
        for text in chunk:
            if isinstance(text, tuple):
                texts.append(text)
                paired += 1
            elif text.strip():
                texts.append(text)
            else:
                empty += 1
        if max_rows is not None and len(texts) >= max_rows:
            texts = texts[:max_rows]
            break
    if not texts:
        raise SparsecoreError("the files hold no non-empty text", "--train_file", "give files with text in them")
    return texts, {"files": used, "texts": len(texts), "pairs": sum(isinstance(t, tuple) for t in texts),
                   "empty_dropped": empty}


def _encoder(tokenizer, max_seq_length: int):
    """A batched ``datasets.map`` function: single texts and sentence pairs (``text_pair`` not None) tokenized as the
    encoder reads them, in their order."""
    def encode(batch: dict) -> dict:
        firsts, seconds = batch["text"], batch["text_pair"]
        out: dict[str, list] = {}
        for rows, extra in (([i for i, s in enumerate(seconds) if s is None], None),
                            ([i for i, s in enumerate(seconds) if s is not None], seconds)):
            if not rows:
                continue
            encoded = tokenizer([firsts[i] for i in rows], None if extra is None else [extra[i] for i in rows],
                                truncation=True, max_length=max_seq_length)
            for key, values in encoded.items():
                column = out.setdefault(key, [None] * len(firsts))
                for i, value in zip(rows, values):
                    column[i] = value
        return out

    return encode


def prune_upstream(model_name_or_path: str = "minilm", train_file: list[str] | tuple = (),
                   text_column: list[str] | None = None, recipe: str | None = None, recipe_args: str | None = None,
                   output_dir: str | Path = "out/backbone", objective: str = "auto", max_seq_length: int = 128,
                   mlm_probability: float = 0.15, max_train_samples: int | None = None, pairs: str = "rows",
                   distill_layers: str = "last",
                   per_device_train_batch_size: int = 16, learning_rate: float = 5e-5, seed: int = 42,
                   resume_from_checkpoint: str | None = None, **training_args) -> UpstreamResult:
    """Prune a backbone on unlabeled text and write it as a backbone folder (see the module docstring).
    ``training_args``: more :class:`transformers.TrainingArguments` (``logging_steps``, ``save_strategy``, …)."""
    from sparsecore.adapters.models import family, load_tokenizer, resolve_model_path
    from sparsecore.adapters.trainer import SparseTrainer, seed_everything
    from sparsecore.adapters.upstream import collator, training_arguments, upstream_model
    from sparsecore.recipe.load import load_recipe, read_recipe_source
    from sparsecore.report import write_sparsity_report

    if objective not in OBJECTIVES:
        raise SparsecoreError(f"--objective {objective!r}", "--objective", f"use one of {', '.join(OBJECTIVES)}")
    if distill_layers not in DISTILL_LAYERS:
        raise SparsecoreError(f"--distill_layers {distill_layers!r}", "--distill_layers",
                              f"use one of {', '.join(DISTILL_LAYERS)}")
    if pairs not in PAIRS:
        raise SparsecoreError(f"--pairs {pairs!r}", "--pairs", f"use one of {', '.join(PAIRS)}")
    for name, value in (("max_seq_length", max_seq_length), ("per_device_train_batch_size",
                                                            per_device_train_batch_size)):
        if value < 1:
            raise SparsecoreError(f"--{name} is {value}", f"--{name}", "use 1 or more")
    if not 0 < mlm_probability < 1:
        raise SparsecoreError(f"--mlm_probability is {mlm_probability}", "--mlm_probability", "use a value in (0, 1)")
    out = Path(output_dir)
    if out.exists() and any(out.iterdir()) and resume_from_checkpoint is None:
        raise SparsecoreError("output_dir exists and is not empty", f"--output_dir {out}",
                              "pick a new folder, or pass --resume_from_checkpoint to continue a run there")
    check_writable(out, f"--output_dir {out}", "choose a folder you can write to")
    notes: list[str] = []
    resume = resume_checkpoint(resume_from_checkpoint, out, notes, with_session=recipe is not None)
    for note in notes:
        log.warning(note)
    seed_everything(seed)
    path = resolve_model_path(model_name_or_path)
    texts, corpus = read_corpus(list(train_file), text_column, max_train_samples, pairs)
    plan = load_recipe(recipe, recipe_args) if recipe else None
    tokenizer = load_tokenizer(path)
    model, backbone, objective = upstream_model(path, objective, distill_layers)
    if plan is not None and plan.quantizes:
        from sparsecore.adapters.quant_attention import quantizable_attention

        quantizable_attention(backbone)  # QKᵀ and attn·V become quantizable matmuls, as in downstream QAT
        log.warning("quantization-aware upstream run: the backbone is saved as its float weights (trained under "
                    "fake quantization); transfer with --recipe transfer-quant to quantize it again")
    log.warning(f"upstream objective: {objective}; {corpus['texts']:,} texts ({corpus['pairs']:,} sentence pairs) "
                f"from {len(corpus['files'])} file(s)"
                + (f", {corpus['empty_dropped']:,} empty rows dropped" if corpus["empty_dropped"] else ""))
    import datasets

    features = datasets.Dataset.from_dict({
        "text": [t[0] if isinstance(t, tuple) else t for t in texts],
        "text_pair": [t[1] if isinstance(t, tuple) else None for t in texts]}).map(
        _encoder(tokenizer, max_seq_length), batched=True, remove_columns=["text", "text_pair"], desc="tokenizing")
    given_epochs = training_args.pop("num_train_epochs", 1.0)
    epochs = plan.num_epochs if plan is not None and plan.num_epochs else given_epochs
    args = training_arguments(output_dir=str(out), num_train_epochs=epochs, learning_rate=learning_rate,
                              per_device_train_batch_size=per_device_train_batch_size, seed=seed,
                              **{"save_strategy": "epoch", **training_args})
    trainer = SparseTrainer(model=model, args=args, train_dataset=features,
                            data_collator=collator(tokenizer, objective, mlm_probability), recipe=plan,
                            problem_type="single_label_classification", resume_dir=resume)
    started = time.time()
    metrics = trainer.train(resume_from_checkpoint=resume).metrics
    files = {}
    if args.should_save:
        backbone.save_pretrained(out)
        tokenizer.save_pretrained(out)
        if recipe:
            (out / "recipe.yaml").write_text(read_recipe_source(recipe)[0], encoding="utf-8")
            files["recipe"] = out / "recipe.yaml"
        table = write_sparsity_report(backbone, out, family(backbone).encoder_linears,
                                      title=f"{Path(path).name} upstream ({objective})")
        (out / "sparsecore_training.json").write_text(json.dumps(
            {"kind": "backbone", "objective": objective, "model_name_or_path": model_name_or_path, "corpus": corpus,
             **({"distill_layers": distill_layers} if "distill" in objective else {}),
             "recipe": recipe, "recipe_args": recipe_args, "metrics": metrics,
             "seconds": time.time() - started}, indent=1), encoding="utf-8")
        files |= {"model": out, "sparsity_report": out / "sparsity_report.png",
                  "training": out / "sparsecore_training.json"}
        if trainer.session is not None and (ranks := distributed.write_rank_checks(
                out, trainer.session.rank_checks)) is not None:
            files["ranks"] = ranks
    else:
        table = {}
    return UpstreamResult(out, objective, metrics, table, files)
