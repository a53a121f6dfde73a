"""Check every input before anything is written: the run's validated plan."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from sparsecore.adapters.models import resolve_model_path
from sparsecore.errors import SparsecoreError
from sparsecore.file_checks import check_tokenizer_files, check_writable
from sparsecore.modifiers.quantization import QuantizationModifier, check_training_end
from sparsecore.recipe import Recipe, load_recipe
from sparsecore.tasks import DataBundle, default_glue_dir, get_task, load_data, sample_glue_dir
from sparsecore.workflows.checkpoints import checkpoint_problem


@dataclass
class Plan:
    """A training run's checked inputs: resolved model and teacher, recipe, data and output folder, plus the
    notes on recipe-vs-flag decisions (printed before the run)."""

    model_path: str
    teacher: str  # "disable" | "self" | a resolved folder
    recipe: Recipe | None
    data: DataBundle
    output_dir: Path
    resume_dir: str | None  # checkpoint folder to resume from
    notes: list[str]  # printed loudly before the run
    pair_encoding: str = "cross"  # "siamese": each text of a pair encoded alone (sparsecore.adapters.pair_encoder)


def _check_output_dir(output_dir: str, overwrite: bool, resuming: bool) -> Path:
    out = Path(output_dir).expanduser()
    if out.is_symlink() and not out.exists():
        raise SparsecoreError(f"output_dir is a symlink to a missing place ({os.readlink(out)})",
                              f"--output_dir {output_dir}", "remove the link, or pass a real folder")
    if out.exists() and not out.is_dir():
        raise SparsecoreError("output_dir is a file", f"--output_dir {output_dir}", "pass a folder path")
    if out.is_dir() and any(out.iterdir()) and not (overwrite or resuming):
        raise SparsecoreError("output_dir exists and is not empty", f"--output_dir {output_dir}",
                              "pass --overwrite_output_dir, --resume_from_checkpoint, or another folder")
    if out.is_dir() and (overwrite or resuming):
        links = _symlinks(out)
        if links:
            raise SparsecoreError(f"output_dir holds a symlink ({links[0]} → {os.readlink(links[0])}); sparsecore "
                                  "never writes through links", f"--output_dir {output_dir}",
                                  "remove the link(s), or choose another folder")
    try:
        check_writable(out, f"--output_dir {output_dir}")
    except SparsecoreError as exc:
        raise SparsecoreError("output_dir is not writable", f"--output_dir {output_dir} ({exc.what})",
                              "choose a folder you can write to") from None
    return out


def _symlinks(folder: Path) -> list[Path]:
    """Symlinks anywhere below ``folder`` (links to folders are not followed)."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        found += [Path(root) / n for n in dirs + files if (Path(root) / n).is_symlink()]
    return found


def _data(data_args, cache_dir) -> tuple[DataBundle, list[str]]:
    notes = []
    task = data_args.task_name
    has_files = data_args.train_file or data_args.validation_file or data_args.dataset_name
    if task is None and not has_files:
        task = "sst2"
        notes.append("no --task_name or data files: using sst2")
    if task is not None:
        get_task(task)
    glue_dir = data_args.glue_dir or (default_glue_dir() if task else None)
    if glue_dir is not None and not Path(glue_dir).is_dir():
        raise SparsecoreError("GLUE folder does not exist", f"--glue_dir {glue_dir}",
                              "pass a folder holding <task>/train.tsv and validation.tsv")
    if task is not None and glue_dir is None and not has_files:
        if task != "sst2":
            raise SparsecoreError(f"no data for task {task!r}", "--task_name",
                                  "pass --glue_dir (or set SPARSECORE_GLUE_DIR) or --train_file/--validation_file")
        glue_dir = sample_glue_dir()
        notes.append(f"sst2 from the bundled sample ({glue_dir}); pass --glue_dir for the full data")
    columns = [c.strip() for c in data_args.input_column_names.split(",")] if data_args.input_column_names else None
    if columns is not None and not (1 <= len(columns) <= 2 and all(columns)):
        raise SparsecoreError(f"--input_column_names {data_args.input_column_names!r} names {len(columns)} columns",
                              "--input_column_names", "give one or two comma-separated column names")
    workers = data_args.preprocessing_num_workers
    if workers is not None and workers < 1:
        raise SparsecoreError(f"--preprocessing_num_workers is {workers}", "--preprocessing_num_workers",
                              "use a positive number of processes")
    if data_args.dataset_name and data_args.glue_dir is None:
        glue_dir = None  # $SPARSECORE_GLUE_DIR is a default, not a second source
    bundle = load_data(task_name=task, glue_dir=glue_dir, train_file=data_args.train_file,
                       validation_file=data_args.validation_file, test_file=data_args.test_file,
                       input_column_names=columns, label_column_name=data_args.label_column_name,
                       dataset_name=data_args.dataset_name, dataset_config_name=data_args.dataset_config_name,
                       validation_ratio=data_args.validation_ratio, eval_on_test=data_args.eval_on_test,
                       cache_dir=cache_dir, overwrite_cache=data_args.overwrite_cache)
    return bundle, notes + list(bundle.notes)


def _teacher(value: str, cache_dir) -> str:
    if value in ("disable", "self"):
        return value
    return resolve_model_path(value, "--distill_teacher")


def _check_numbers(data_args, training_args, given: set[str]) -> None:
    """Flags whose value makes no sense (HF accepts some of them and fails later, or trains nonsense)."""
    for name in ("max_seq_length", "max_train_samples", "max_eval_samples", "max_predict_samples"):
        value = getattr(data_args, name)
        if value is not None and value < 1:
            raise SparsecoreError(f"--{name} is {value}", f"--{name}", "use a positive integer")
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        value = getattr(training_args, name)
        if value < 1:
            raise SparsecoreError(f"--{name} is {value}", f"--{name}", "use a positive integer")
    if training_args.learning_rate < 0:
        raise SparsecoreError(f"--learning_rate is {training_args.learning_rate:g}", "--learning_rate",
                              "use a rate >= 0, e.g. 5e-5")
    if "num_train_epochs" in given and training_args.num_train_epochs <= 0 and training_args.max_steps <= 0:
        raise SparsecoreError(f"--num_train_epochs is {training_args.num_train_epochs:g}", "--num_train_epochs",
                              "use a positive number of epochs (or --max_steps N)")
    if training_args.seed < 0:
        raise SparsecoreError(f"--seed is {training_args.seed}", "--seed", "use an integer >= 0")
    strategy = str(getattr(training_args.save_strategy, "value", training_args.save_strategy))
    if strategy == "steps" and training_args.save_steps <= 0:
        raise SparsecoreError(f"--save_steps is {training_args.save_steps:g} with --save_strategy steps",
                              "--save_steps", "use a positive number of steps, or --save_strategy epoch/no")


def make_plan(model_args, data_args, training_args, given: set[str]) -> Plan:
    """Check every flag, path, data file and the recipe, and reconcile recipe and flags, before anything is
    written; ``SparsecoreError`` on the first problem. ``given``: the names of the flags the caller set
    explicitly (a recipe's schedule overrides defaults, not given values). ``training_args`` is updated in
    place (epochs/steps from the recipe, ``do_train``/``do_eval`` defaults)."""
    notes: list[str] = []
    _check_numbers(data_args, training_args, given)
    out = _check_output_dir(training_args.output_dir, data_args.overwrite_output_dir,
                            training_args.resume_from_checkpoint is not None)
    model_path = resolve_model_path(model_args.model_name_or_path)
    if model_args.tokenizer_name:
        check_tokenizer_files(Path(model_args.tokenizer_name).expanduser(),
                              f"--tokenizer_name {model_args.tokenizer_name}")
    else:
        check_tokenizer_files(Path(model_path), f"--model_name_or_path {model_args.model_name_or_path}")
    teacher = _teacher(model_args.distill_teacher, model_args.cache_dir)
    data, data_notes = _data(data_args, model_args.cache_dir)
    notes += data_notes
    if not (training_args.do_train or training_args.do_eval or training_args.do_predict):
        training_args.do_train = training_args.do_eval = True
        notes.append("neither --do_train nor --do_eval given: doing both")
    if training_args.do_train and data.train is None and not data_args.one_shot:
        raise SparsecoreError("--do_train needs training data", "data",
                              "pass --train_file or a GLUE folder with train.tsv")
    if training_args.do_eval and not data.evals:
        raise SparsecoreError("--do_eval needs validation data", "data",
                              "pass --validation_file, or --validation_ratio to hold out part of train")
    if training_args.do_predict and data.test is None:
        raise SparsecoreError("--do_predict needs --test_file", "--test_file",
                              "pass a csv/tsv/json/jsonl/parquet/arrow file, or a dataset with a test split")
    recipe = load_recipe(data_args.recipe, data_args.recipe_args) if data_args.recipe else None
    if data_args.recipe_args and not data_args.recipe:
        raise SparsecoreError("--recipe_args given without --recipe", "--recipe_args", "pass --recipe as well")
    if data_args.one_shot:
        if recipe is None:
            raise SparsecoreError("--one_shot needs a recipe to apply", "--one_shot", "pass --recipe as well")
        if training_args.do_train:
            notes.append("--one_shot applies the recipe without training: --do_train ignored")
            training_args.do_train = False
    resume_dir = resume_checkpoint(training_args.resume_from_checkpoint, out, notes, with_session=recipe is not None)
    if recipe is not None:
        notes += list(recipe.notes)
        notes += _reconcile(recipe, training_args, given, teacher, data_args.one_shot)
    elif teacher != "disable":
        notes.append("--distill_teacher is set but there is no recipe with a !DistillationModifier: teacher unused")
    encoding = _pair_encoding(model_args.pair_encoding, model_path, teacher, data, recipe, resume_dir)
    return Plan(model_path, teacher, recipe, data, out, resume_dir, notes, encoding)


def _pair_encoding(value: str | None, model_path: str, teacher: str, data: DataBundle, recipe: Recipe | None,
                   resume_dir: str | None = None) -> str:
    """``--pair_encoding`` checked against the model folder, the checkpoint resumed, the data's text columns and the
    teacher (a siamese model folder or checkpoint is siamese without the flag)."""
    from sparsecore.adapters.pair_encoder import ENCODINGS, folder_pair_encoding

    if value is not None and value not in ENCODINGS:
        raise SparsecoreError(f"--pair_encoding {value!r}", "--pair_encoding", f"use one of: {', '.join(ENCODINGS)}")
    saved = folder_pair_encoding(model_path)
    if saved == "siamese" and value == "cross":
        raise SparsecoreError("the model folder holds a siamese pair classifier", f"--model_name_or_path {model_path}",
                              "drop --pair_encoding cross, or start from a cross-encoder or backbone folder")
    resumed = (folder_pair_encoding(resume_dir) or "cross") if resume_dir else None
    encoding = value or saved or resumed or "cross"
    if resumed is not None and resumed != encoding:
        raise SparsecoreError(f"the checkpoint is a {resumed} pair classifier, this run {encoding}",
                              f"--resume_from_checkpoint {resume_dir}",
                              f"resume with --pair_encoding {resumed} (the run's own flags)")
    if encoding == "siamese" and len(data.text_columns) != 2:
        raise SparsecoreError(f"--pair_encoding siamese needs text pairs; the data has one text column "
                              f"({', '.join(data.text_columns)})", "--pair_encoding",
                              "use a pair task (mrpc, stsb, qqp, ...) or two --input_column_names, or drop the flag")
    if recipe is not None and recipe.distills and teacher not in ("disable", "self") \
            and (taught := folder_pair_encoding(teacher) or "cross") != encoding:
        raise SparsecoreError(f"the teacher is a {taught} pair classifier, the student {encoding}",
                              f"--distill_teacher {teacher}",
                              "pass a teacher trained with the same --pair_encoding, 'self', or 'disable'")
    return encoding


def resume_checkpoint(value: str | None, out: Path, notes: list[str], with_session: bool) -> str | None:
    """``--resume_from_checkpoint``: a checkpoint folder, or true/last for the newest complete one in output_dir.

    Every file a resume reads is checked first (a run killed while saving leaves a partial checkpoint-N)."""
    if value is None or value.lower() in ("false", "no", "none"):
        return None
    if value.lower() in ("true", "last", "yes"):
        checkpoints = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1])
                             if p.name.split("-")[-1].isdigit() else -1)
        if not checkpoints:
            raise SparsecoreError("no checkpoint-N folder to resume from", f"--output_dir {out}",
                                  "pass the checkpoint folder itself, or drop --resume_from_checkpoint")
        for newest in reversed(checkpoints):
            problem = checkpoint_problem(newest, with_session)
            if problem is None:
                return str(newest)
            notes.append(f"skipping {newest.name} for resume: {problem} (a run stopped while saving it?)")
        raise SparsecoreError("no complete checkpoint to resume from", f"--output_dir {out}",
                              f"every checkpoint-N is partial ({notes[-1].split(': ', 1)[1]}); start afresh")
    path = Path(value).expanduser()
    if not (path / "trainer_state.json").is_file():
        raise SparsecoreError("not a training checkpoint (no trainer_state.json)",
                              f"--resume_from_checkpoint {value}", "pass a checkpoint-N folder written by a run")
    problem = checkpoint_problem(path, with_session)
    if problem is not None:
        raise SparsecoreError(f"checkpoint cannot be resumed: {problem}", f"--resume_from_checkpoint {value}",
                              "resume from an earlier checkpoint-N, or start afresh")
    return str(path)


def _reconcile(recipe: Recipe, training_args, given: set[str], teacher: str, one_shot: bool) -> list[str]:
    """Recipe vs flags: conflicts are errors or loud notes, never silent overrides."""
    notes = []
    epochs = recipe.num_epochs
    if epochs is not None and not one_shot:
        if "num_train_epochs" in given and not math.isclose(training_args.num_train_epochs, epochs):
            raise SparsecoreError(f"--num_train_epochs {training_args.num_train_epochs:g} conflicts with the recipe's "
                                  f"{epochs:g} epochs", recipe.source,
                                  "drop --num_train_epochs, or change the recipe (e.g. --recipe_args num_epochs=N)")
        training_args.num_train_epochs = epochs
        notes.append(f"training for {epochs:g} epochs, as the recipe says")
    steps = recipe.num_steps
    if steps is not None and not one_shot and epochs is None and training_args.max_steps <= 0:
        training_args.max_steps = steps + 1  # the update at end_step happens before step end_step's batch
        notes.append(f"training for {steps + 1} optimizer steps, as the recipe's end_step says")
    elif training_args.max_steps > 0 and not one_shot and "max_steps" in given:
        end = f"{epochs:g} epochs" if epochs is not None else f"{steps} steps"
        notes.append(f"--max_steps {training_args.max_steps} bounds training (the recipe's schedule: {end})")
    if not one_shot:
        for modifier in recipe.modifiers:
            if isinstance(modifier, QuantizationModifier):  # the recipe may leave training length to the flags
                check_training_end(modifier, training_args.num_train_epochs)
    owners = recipe.lr_owners
    if owners:
        clash = sorted({"learning_rate", "lr_scheduler_type", "warmup_steps"} & given)
        if clash:
            notes.append(f"the recipe's {', '.join(owners)} sets the learning rate: "
                         f"{', '.join('--' + c for c in clash)} only apply before its first change")
    has_kd = recipe.distills
    if has_kd and teacher == "disable" and not one_shot:
        notes.append("the recipe's !DistillationModifier is skipped: --distill_teacher disable")
    if not has_kd and teacher != "disable":
        notes.append("--distill_teacher is set but the recipe has no !DistillationModifier: teacher unused")
    return notes
