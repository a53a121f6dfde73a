"""MkDocs hook: a line ``<!-- results-table: NAME -->`` in a page becomes a table built from benchmarks/results/.

The benchmark scripts write their measurements as JSON (benchmarks/full_data_accuracy.py, demo_choices.py,
data_prep.py); the documentation's tables are made from those files at build time, never typed by hand.
An unknown NAME or a missing or unreadable results file stops the build with a message saying which.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from mkdocs.exceptions import PluginError

MARKER = re.compile(r"^<!--\s*results-table:\s*([\w-]+)\s*-->[ \t]*$", re.MULTILINE)  # a line of its own


def on_page_markdown(markdown: str, *, page, config, files) -> str:
    results = Path(config.config_file_path).resolve().parent / "benchmarks" / "results"
    return MARKER.sub(lambda m: table(m.group(1), results, page.file.src_uri), markdown)


def table(name: str, results: Path, where: str) -> str:
    if name not in TABLES:
        raise PluginError(f"{where}: unknown results table '{name}' — known: {', '.join(sorted(TABLES))}")
    file, build = TABLES[name]
    path = results / file
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PluginError(f"{where}: results table '{name}' needs {path}, which does not exist — "
                          "run the benchmark that writes it") from None
    except (OSError, ValueError) as exc:
        raise PluginError(f"{where}: results table '{name}': cannot read {path}: {exc}") from None
    return build(data)


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def rows(header: list[str], align: str, body: list[list]) -> str:
    """A Markdown table; ``align`` has one letter per column: l(eft) or r(ight)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in body])


def full_data_accuracy(data: dict) -> str:
    runs = {k: v for k, v in data.items() if "accuracy" in v}
    dense = runs.get("dense", {}).get("accuracy")
    return rows(["run", "encoder sparsity", "SST-2 val accuracy (872)", "of dense", "wall time", "train samples/s"],
                "lrrrrr",
                [[f"`{k}`", f"{100 * r['encoder_sparsity']:.1f}%", pct(r["accuracy"]),
                  f"{100 * r['accuracy'] / dense:.1f}%" if dense else "–", f"{r['wall_time_s'] / 60:.0f} min",
                  f"{r['train_samples_per_second']:.1f}"] for k, r in runs.items()])


def full_data_runs(data: dict) -> str:
    def recipe(flags: dict) -> str:
        text = flags.get("recipe", "")
        return "inline YAML (in the JSON)" if "\n" in text else f"`{text}`"

    runs = {k: v for k, v in data.items() if "flags" in v}
    return rows(["run", "starts from", "recipe", "recipe_args", "teacher", "batches"], "llllll",
                [[f"`{k}`", f"`{r['flags'].get('model_name_or_path', '')}`", recipe(r["flags"]),
                  f"`{r['flags']['recipe_args']}`" if r["flags"].get("recipe_args") else "–",
                  f"`{r['flags']['distill_teacher']}`" if r["flags"].get("distill_teacher") else "none",
                  r["flags"].get("train_sampling_strategy", "random")] for k, r in runs.items()])


def full_data_throughput(data: dict) -> str:
    speeds = data["throughput"]["samples_per_second"]
    base_name, base = next(iter(speeds.items()))
    return rows(["training run", "samples/s", f"vs {base_name}"], "lrr",
                [[k, f"{v:.1f}", f"{v / base:.2f}×"] for k, v in speeds.items()])


def full_data_oneshot(data: dict) -> str:
    points = data["oneshot_curve"]["points"]
    methods = list(dict.fromkeys(k.split("@")[0] for k in points))
    grid = sorted({float(k.split("@")[1]) for k in points})
    return rows(["one-shot from dense", *[f"{s:.0%}" for s in grid]], "l" + "r" * len(grid),
                [[m, *[pct(points[f"{m}@{s:g}"]["accuracy"]) if f"{m}@{s:g}" in points else "–" for s in grid]]
                 for m in methods])


def demo_choices(data: dict) -> str:
    by_choice: dict[str, list[dict]] = {}
    for key, r in data.items():
        by_choice.setdefault(key.split("@")[0], []).append(r)

    def mean(runs: list[dict], field: str) -> float:
        return sum(r[field] for r in runs) / len(runs)

    def distillation(c: dict) -> str:
        if c.get("teacher") is False:
            return "none (no teacher)"
        return f"hardness {c['hardness']:g}, T {c['temp']:g}" if "temp" in c else f"hardness {c['hardness']:g}, T –"

    body = []
    for name, runs in sorted(by_choice.items(), key=lambda item: -mean(item[1], "accuracy")):
        c, runs = runs[0]["choice"], sorted(runs, key=lambda r: r["seed"])
        acc, dense = mean(runs, "accuracy"), runs[0]["dense_accuracy"]
        body.append([f"`{name}`", c["method"].upper(), f"{c['epochs']:g}",
                     f"0–{c['end']:g} every {c['freq']:g}", f"{c['block']} / {c['grads']}" if c["method"] == "obs"
                     else "–", distillation(c), c["lr"], pct(acc), f"{100 * (acc - dense):+.2f} pts",
                     " / ".join(f"{r['seed']}: {100 * r['accuracy']:.2f}" for r in runs),
                     f"{mean(runs, 'wall_time_s'):.0f} s"])
    return rows(["choice", "method", "epochs", "pruning (epochs)", "block / gradients", "distillation", "lr",
                 "accuracy, mean", "vs dense", "seed: accuracy", "pruning stage"], "lllllllrrlr", body)


def data_prep(data: dict) -> str:
    results = data["results"]
    cold = results.get("arrow, cold cache", next(iter(results.values())))["seconds"]
    return rows([f"{data['rows']:,} rows", "prepare (s)", "rows/s", "peak RSS growth over the model",
                 "speed vs arrow, cold cache"], "lrrrr",
                [[k, f"{r['seconds']:.1f}", f"{r['rows'] / r['seconds']:,.0f}", f"{r['growth_mb']:,.0f} MB",
                  f"{cold / r['seconds']:.{2 if cold < 10 * r['seconds'] else 0}f}×"] for k, r in results.items()])


def engine_bench(data: dict) -> str:
    """Latency medians per engine, with sparsecore's ratios to ONNX Runtime on the dense model and to DeepSparse."""
    m, all_rows = data["machine"], data["rows"]

    def ms(row: dict, engine: str) -> str:
        return f"{row[engine + '_ms']:.1f}" if engine + "_ms" in row else "–"

    rounds = any("round_ratios" in r for r in all_rows)  # DeepSparse and sparsecore timed in alternating turns
    body = []
    for r in all_rows:
        dense = next((d for d in all_rows if (d["model"], d["precision"], d["batch"], d["sparsity"])
                      == (r["model"], r["precision"], r["batch"], 0)), {})
        ours = r.get("sparsecore_ms")
        body.append([r["model"], r["precision"], f"{r['sparsity']:.0%}", r["structure"], r["batch"],
                     ms(r, "onnxruntime"), ms(r, "deepsparse"), ms(r, "sparsecore"),
                     f"{dense['onnxruntime_ms'] / ours:.2f}×" if ours and "onnxruntime_ms" in dense else "–",
                     f"{ours / r['deepsparse_ms']:.2f}" if ours and r.get("deepsparse_ms") else "–",
                     *([" / ".join(f"{x:.2f}" for x in r.get("round_ratios", []))] if rounds else [])])
    head = (f"Machine: {_cpu(m)}, {m['cores']} cores (fp32 FMA peak measured in the run: "
            f"{m['fma_peak_gflops']:.0f} GFLOP/s); sequence length {all_rows[0]['seq']}; medians in ms. "
            f"Command: `{data.get('command', 'python benchmarks/engine_bench.py')}`\n\n")
    first = "".join(f"\n\nFirst call ({precision}, {f['model']} {f['sparsity']:.0%}: engine load + first forward, "
                    f"batch 1): {f['cold'] / 1e3:.1f} s with Numba's cache cold, {f['warm'] / 1e3:.2f} s warm."
                    for precision, f in data.get("first_call", {}).items())
    return head + rows(["model", "precision", "sparsity", "structure", "batch", "ONNX Runtime", "DeepSparse",
                        "sparsecore", "sparsecore speed-up vs ORT dense", "sparsecore / DeepSparse time",
                        *(["… per alternated turn"] if rounds else [])],
                       "lllll" + "r" * (6 if rounds else 5), body) + first


def int8_kernels(data: dict) -> str:
    """Each integer path's time against the fp32-widening int8 kernel on the same sparse matrix, per weight kind."""
    paths = data["paths"]
    body = []
    for r in data["rows"]:
        ran = [p for p in paths if f"{p}_ms" in r]
        body.append([r.get("kind", "1×4 blocks"), r["shape"], f"{r['n']}×{r['k']}", r["tokens"],
                     f"{r['fp32_widening_ms']:.2f}",
                     *[f"{r[p + '_ms']:.2f} ({r['fp32_widening_ms'] / r[p + '_ms']:.2f}×)" if p in ran else "–"
                       for p in paths],
                     f"{2 * r['nnz'] * r['tokens'] / (min(r[p + '_ms'] for p in ran) * 1e6):.0f}"])
    head = (f"CPU: {data['cpu']}; {data['sparsity']:.0%} sparsity; medians over {data['iters']} runs, all cores. "
            f"Command: `{data['command']}`\n\n")
    return head + rows(["weights", "Linear", "N×K", "tokens", "fp32-widening ms",
                        *[f"{p} ms (speed-up)" for p in paths], "best useful GOP/s"],
                       "llll" + "r" * (len(paths) + 2), body)


def fp32_kernels(data: dict) -> str:
    """Each fp32 float path's time (token-blocked kernels) against the features × tokens kernel, per weight kind."""
    paths = data["paths"]
    body = []
    for r in data["rows"]:
        old = r["features_x_tokens_ms"]
        best = min(old, *(r[f"{p}_ms"] for p in paths))
        body.append([r["kind"], r["shape"], f"{r['n']}×{r['k']}", r["tokens"], f"{old:.2f}",
                     *[f"{r[p + '_ms']:.2f} ({old / r[p + '_ms']:.2f}×)" for p in paths],
                     f"{2 * r['nnz'] * r['tokens'] / (best * 1e6):.0f}"])
    head = (f"CPU: {data['cpu']}; {data['sparsity']:.0%} sparsity; best of {data['rounds']} interleaved rounds, all "
            f"cores; the token-blocked times include copying the activations into their layout. "
            f"Command: `{data['command']}`\n\n")
    return head + rows(["weights", "Linear", "N×K", "tokens", "features × tokens ms",
                        *[f"{p} ms (speed-up)" for p in paths], "best useful GFLOP/s"],
                       "llll" + "r" * (len(paths) + 2), body)


def pipeline_throughput(data: dict) -> str:
    """Sentences/s of each engine's Pipeline on the SST-2 validation text, with ratios to DeepSparse's Pipeline."""
    names = {"sparsecore": "sparsecore.Pipeline, engine sparsecore",
             "onnxruntime": "sparsecore.Pipeline, engine onnxruntime",
             "deepsparse-pipeline": f"deepsparse.Pipeline, sequence_length {data['seq']}",
             "deepsparse-pipeline-buckets": f"deepsparse.Pipeline, buckets {data['buckets']}"}
    body = []
    for r in data["rows"]:
        ds = {k: r[k]["sentences_per_s"] for k in ("deepsparse-pipeline", "deepsparse-pipeline-buckets") if k in r}
        for engine, label in names.items():
            if engine not in r:
                continue
            speed = r[engine]["sentences_per_s"]
            agree = r[engine].get("agreement_with_onnxruntime")
            body.append([r["model"], r["precision"], f"{r['sparsity']:.0%} {r['structure']}", label,
                         f"{speed:.1f}", *[f"{speed / ds[k]:.2f}×" if k in ds else "–" for k in
                                           ("deepsparse-pipeline", "deepsparse-pipeline-buckets")],
                         pct(agree) if agree is not None else "–"])
    head = (f"Machine: {_cpu(data['machine'])}, {data['machine']['cores']} cores; {data['sentences']} SST-2 "
            f"validation sentences, {data['batch']} per call, tokenization included; median of {data['repeats']} "
            f"passes. Command: `{data['command']}`\n\n")
    return head + rows(["model", "precision", "pruned", "Pipeline", "sentences/s", "vs DeepSparse fixed length",
                        "vs DeepSparse buckets", "labels = ONNX Runtime's"], "llll" + "r" * 4, body)


def streams(data: dict) -> str:
    """Items/s with one stream on every core against several streams sharing them, per engine and batch."""
    body = []
    for r in data["rows"]:
        one = next(x for x in data["rows"] if (x["engine"], x["batch"], x["streams"]) == (r["engine"], r["batch"], 1))
        body.append([r["engine"], r["batch"], f"{r['streams']} × {r['threads_per_stream']}", f"{r['items_per_sec']:.1f}",
                     f"{r['median_ms']:.1f}", f"{r['p99_ms']:.1f}", f"{r['items_per_sec'] / one['items_per_sec']:.2f}"])
    first = data["rows"][0]
    head = (f"Machine: {first['cpu']}, {data['cores']} cores; `{data['deployment']}`, sequence length "
            f"{first['sequence_length']}. Command: `{data['command']}`\n\n")
    return head + rows(["engine", "batch", "streams × threads", "items/s", "median ms per call", "p99 ms",
                        "items/s ÷ one stream"], "lllrrrr", body)


def engine_overhead(data: dict) -> str:
    """Forward time against the Python the engine runs around its kernels, per model."""
    m = data["machine"]
    body = [[r["model"], r["batch"], f"{r['forward_ms']:.2f}", f"{r['python_ms']:.2f}", f"{r['python_share']:.0%}"]
            for r in data["rows"]]
    head = f"Machine: {_cpu(m)}, {m['cores']} cores; seq 128, medians. Command: `{data['command']}`\n\n"
    return head + rows(["model", "batch", "forward ms", "Python around the kernels ms", "share"], "lrrrr", body)


def fp32_panels(data: dict) -> str:
    """Whole models with their fp32 Linears' K in panels against one panel, timed in alternation."""
    body = [[r["model"], r["batch"], ", ".join(r["panels"]), f"{r['panels_ms']:.1f}", f"{r['one_panel_ms']:.1f}",
             f"{r['panels_ms'] / r['one_panel_ms']:.2f}", f"{r['max_abs_diff']:.0e}"] for r in data["rows"]]
    return _alternated(data) + rows(["model", "batch", "panels per Linear (first layer)", "panels ms", "one panel ms",
                                     "ratio", "max abs Δlogit"], "lrlrrrr", body)


def fp32_panels_tuned(data: dict) -> str:
    """Whole models with the rule's fp32 panel widths against the widths timed at load, in alternation."""
    body = [[r["model"], r["batch"], ", ".join(r["rule_panels"]), ", ".join(r["tuned_panels"]),
             f"{r['tuned_load_s']:.1f}", f"{r['rule_ms']:.1f}", f"{r['tuned_ms']:.1f}",
             f"{r['tuned_ms'] / r['rule_ms']:.2f}", f"{r['max_abs_diff']:.0e}"] for r in data["rows"]]
    return _alternated(data) + rows(["model", "batch", "rule: panels × columns (first layer)", "tuned",
                                     "load with timing s", "rule ms", "tuned ms", "ratio", "max abs Δlogit"],
                                    "lrllrrrrr", body)


def fp32_order(data: dict) -> str:
    """Whole models with their fp32 weights packed group by group against row by row, timed in alternation."""
    body = [[r["model"], r["batch"], ", ".join(r["panels"]), f"{r['grouped_ms']:.1f}", f"{r['row_order_ms']:.1f}",
             f"{r['grouped_ms'] / r['row_order_ms']:.2f}", f"{r['max_abs_diff']:.0e}"] for r in data["rows"]]
    return _alternated(data) + rows(["model", "batch", "panels × columns (first layer)", "group by group ms",
                                     "row by row ms", "ratio", "max abs Δlogit"], "lrlrrrr", body)


def fp32_run_order(data: dict) -> str:
    """Whole models with each (group, panel)'s fp32 runs stored longest first against row order, alternated."""
    body = [[r["model"], r["batch"], ", ".join(r["panels"]), f"{r['row_order_ms']:.1f}", f"{r['longest_first_ms']:.1f}",
             f"{r['longest_first_ms'] / r['row_order_ms']:.2f}", f"{r['max_abs_diff']:.0e}"] for r in data["rows"]]
    return _alternated(data) + rows(["model", "batch", "panels × columns (first layer)", "row order ms",
                                     "longest first ms", "ratio", "max abs Δlogit"], "lrlrrrr", body)


def int8_block4_layout(data: dict) -> str:
    """Whole 1×4-block int8 models on the interleaved layout (fused producers, and each Linear quantizing its own input
    where recorded), the token-blocked one, and by a threshold, alternated."""
    unfused = "unfused_ms" in data["rows"][0]
    body = [[r["model"], r["batch"], f"{r['interleaved_ms']:.1f}",
             *([f"{r['unfused_ms']:.1f}", f"{r['interleaved_ms'] / r['unfused_ms']:.2f}"] if unfused else []),
             f"{r['token_blocked_ms']:.1f}", f"{r['interleaved_ms'] / r['token_blocked_ms']:.2f}",
             f"{r['token_blocked']} of {r['linears']}" if r.get("threshold") is not None else "–",
             f"{r['threshold_ms']:.1f}" if r.get("threshold") is not None else "–", f"{r['max_abs_diff']:.0e}"]
            for r in data["rows"]]
    threshold = data["rows"][0].get("threshold")
    extra = f"; threshold {threshold:g} stored weights per input column" if threshold is not None else ""
    head = ["model", "batch", "interleaved ms", *(["unfused ms", "interleaved / unfused"] if unfused else []),
            "token-blocked ms", "interleaved / token-blocked", "threshold: token-blocked Linears", "threshold ms",
            "max abs Δlogit"]
    return _alternated(data, extra) + rows(head, "lr" + "r" * (len(head) - 2), body)


TRANSFER_GOALS = {"transfer80": 0.985, "transfer90": 0.975, "transfer-quant80": 0.975,  # share of dense to reach
                  "transfer80-layers": 0.985, "transfer90-layers": 0.975, "transfer90-obs": 0.975}


def sparse_transfer(data: dict) -> str:
    """benchmarks/sparse_transfer.py: each transfer run against the dense fine-tuning of its task."""
    body, shown = [], []
    for name, r in sorted(data.items(), key=lambda kv: (kv[1].get("task", ""), kv[0])):
        if "-" not in name or name.startswith(("dense-", "upstream", "zeroshot-")):
            continue
        base, at, schedule = name.partition("@")  # name@eE-lrLR: a schedule other than the task's own
        kind, task = base.rsplit("-", 1)
        kind, siamese, _ = kind.partition("-siamese")  # KIND-siamese-TASK: a siamese pair classifier
        dense = data.get(f"dense{siamese}-{task}{at}{schedule}")
        share = r["score"] / dense["score"] if dense and dense["score"] else None
        denses = [d["score"] for n, d in data.items()  # every dense run of the task: cross or siamese, any schedule
                  if n.partition("@")[0] in (f"dense-{task}", f"dense-siamese-{task}")]
        goal = TRANSFER_GOALS.get(kind)
        downstream = kind.startswith("downstream")  # GMP on the task itself, from the dense fine-tuned model
        body.append([task, "siamese" if siamese else "cross" if task != "sst2" else "–", r["metric"], _schedule(r, dense),
                     f"{dense['score']:.4f}" if dense else "not run",
                     f"`dense{siamese}-{task}`" if downstream else
                     f"`upstream{kind.removeprefix('transfer-quant').removeprefix('transfer')}`"
                     + (f" of {r['backbone_trained'][:10]}" if r.get("backbone_trained") else ""),
                     f"GMP {kind[len('downstream'):]}% on the task" if downstream else
                     "`transfer-quant`" if "quant" in kind else "`transfer`",
                     f"{100 * r['encoder_sparsity']:.1f}%", f"{r['score']:.4f}",
                     f"{100 * share:.1f}%" if share is not None else "–",
                     f"{100 * r['score'] / max(denses):.1f}%" if denses else "–",
                     f"≥ {100 * goal:.1f}%" if goal else "–",
                     f"{r['wall_time_s'] / dense['wall_time_s']:.2f}×" if dense else "–",
                     f"{r['train_samples_per_second']:.1f}"])
        shown += [r, *([dense] if dense else [])]
    head = ["task", "pairs encoded", "metric", "schedule", "dense", "backbone", "recipe", "encoder sparsity",
            "transfer", "of dense", "of best dense (any run)", "goal", "wall time / dense", "train samples/s"]
    return _machine_line(shown) + rows(head, "lllllll" + "r" * 7, body)


def _schedule(*entries: dict | None) -> str:
    """"E ep, lr LR" of a fine-tuning run: its recorded epochs and learning rate, else those in the first entry's
    recipe arguments (a downstream run has none: its dense run's)."""
    for r in entries:
        if r and "epochs" in r:
            return f"{r['epochs']:g} ep, lr {r['learning_rate']:g}"
        args = dict(kv.split("=", 1) for kv in ((r or {}).get("flags", {}).get("recipe_args") or "").split(",") if kv)
        if "num_epochs" in args:
            return f"{float(args['num_epochs']):g} ep, lr {float(args['init_lr']):g}"
    return "–"


def sparse_transfer_zero_shot(data: dict) -> str:
    """benchmarks/sparse_transfer.py: each backbone as a sentence encoder with no training (STS-B, cosine)."""
    runs = {k: r for k, r in sorted(data.items()) if k.startswith("zeroshot-")}
    dense = runs.get("zeroshot-dense")
    body = [[f"`{r['backbone']}`" if r["backbone"] != "dense" else "all-MiniLM-L6-v2 (dense)",
             f"{100 * r['encoder_sparsity']:.1f}%", f"{r['pairs']:,}", f"{r['score']:.4f}",
             f"{100 * r['score'] / dense['score']:.1f}%" if dense else "–"] for r in runs.values()]
    return _machine_line(list(runs.values())) + rows(
        ["backbone", "encoder sparsity", "STS-B validation pairs", "Pearson of cosine", "of dense"], "lrrrr", body)


def sparse_transfer_upstream(data: dict) -> str:
    """benchmarks/sparse_transfer.py: the upstream runs that made the backbones."""
    runs = {k: r for k, r in sorted(data.items()) if k.startswith("upstream")}
    body = [[f"`{k}`", r["objective"] + (" (every layer)" if r.get("distill_layers") == "all" else ""),
             r.get("pruner", "obs" if k.endswith("-obs") else "gmp").upper(),
             f"{r['corpus']['texts']:,}", f"{r['corpus'].get('pairs', 0):,}",
             f"{r['epochs']:g}",
             f"{100 * r['encoder_sparsity']:.1f}%", f"{r['loss']:.4f}", f"{r['wall_time_s'] / 60:.0f} min",
             f"{r['train_samples_per_second']:.1f}", r.get("date", "–")[:10]] for k, r in runs.items()]
    return _machine_line(list(runs.values())) + rows(
        ["backbone", "objective", "pruner", "texts", "of them sentence pairs", "epochs", "encoder sparsity",
         "final training loss", "wall time", "samples/s", "trained"], "lllrrrrrrrl", body)


def sparse_transfer_objectives(data: dict) -> str:
    """benchmarks/sparse_transfer.py: the upstream objectives side by side (``upstream80-short-*``, each as long as
    the others) — what each backbone keeps with no training and after transfer — and the full-length distilled
    backbone for reference."""
    names = {"upstream80-short-distill": "distill", "upstream80-short-mlm": "mlm (fresh head)",
             "upstream80-short-mlmdistill": "mlm+distill", "upstream80": "distill (full length)"}
    dense_zero = data.get("zeroshot-dense", {}).get("score")

    def score(name: str, dense: str) -> str:
        r, d = data.get(name), data.get(dense)
        if not r:
            return "not run"
        return f"{r['score']:.4f}" + (f" ({100 * r['score'] / d['score']:.1f}%)" if d else "")

    body = []
    for name, label in names.items():
        if name not in data:
            continue
        r, kind = data[name], "transfer" + name[len("upstream"):]
        zero = data.get(f"zeroshot-{name}")
        body.append([f"`{name}`", label, f"{r['epochs']:g}", f"{r['wall_time_s'] / 60:.0f} min",
                     f"{zero['score']:.4f}" + (f" ({100 * zero['score'] / dense_zero:.1f}%)" if dense_zero else "")
                     if zero else "not run",
                     score(f"{kind}-siamese-stsb", "dense-siamese-stsb"), score(f"{kind}-sst2", "dense-sst2")])
    return _machine_line([data[n] for n in names if n in data]) + rows(
        ["backbone (80%)", "objective", "upstream epochs", "upstream wall time", "zero-shot STS-B (of dense)",
         "transfer STS-B siamese (of dense)", "transfer SST-2 (of dense)"], "llrrrrr", body)


def pair_throughput(data: dict) -> str:
    """benchmarks/pair_throughput.py: a siamese deployment's validation pairs through each engine's Pipeline."""
    ds = data["engines"].get("deepsparse", {}).get("pairs_per_s")
    body = [[engine, f"{r['pairs_per_s']:.1f}", f"{r['pairs_per_s'] / ds:.2f}×" if ds else "–",
             f"{100 * r['agreement_with_onnxruntime']:.1f}%" if "agreement_with_onnxruntime" in r else "–"]
            for engine, r in data["engines"].items()]
    head = (f"{_cpu(data['machine'])}, {data['machine']['cores']} cores; {data['pairs']:,} {data['task'].upper()} "
            f"validation pairs, batch {data['batch']}, lengths {data['sequence_length']}, median of {data['repeats']} "
            f"passes. Command: `{data['command']}`\n\n")
    return head + rows(["engine", "pairs/s", "throughput / DeepSparse's", "same outputs as ONNX Runtime"], "lrrr", body)


def _machine_line(entries: list[dict]) -> str:
    """"Measured on: …" for the machines the entries name (none: nothing)."""
    cpus = sorted({_cpu(r["machine"]) + f", {r['machine']['cores']} cores" for r in entries if "machine" in r})
    return f"Measured on: {'; '.join(cpus)}.\n\n" if cpus else ""


def _alternated(data: dict, extra: str = "") -> str:
    """The line above a table of benchmarks/engine_ab.py's alternated whole-model timings."""
    m = data["machine"]
    return (f"Machine: {_cpu(m)}, {m['cores']} cores; seq {data['rows'][0]['seq']}, best of interleaved runs{extra}. "
            f"Command: `{data['command']}`\n\n")


def _cpu(machine: dict) -> str:
    """The CPU of a result file's ``machine``: its name and ISA, then family/model and sparsecore's paths where
    recorded."""
    extra = [f"family {machine['cpu_family']} model {machine['cpu_model']}"] if machine.get("cpu_family") else []
    if machine.get("integer_path"):
        extra.append(f"sparsecore paths: integer {machine['integer_path']}, float {machine['float_path']}")
    return machine["cpu"] + "".join(f"; {e}" for e in extra)


TABLES = {  # marker name → (file in benchmarks/results/, table builder)
    "full_data_accuracy": ("full_data_accuracy.json", full_data_accuracy),
    "full_data_runs": ("full_data_accuracy.json", full_data_runs),
    "full_data_throughput": ("full_data_accuracy.json", full_data_throughput),
    "full_data_oneshot": ("full_data_accuracy.json", full_data_oneshot),
    "demo_choices": ("demo_choices.json", demo_choices),
    "sparse_transfer": ("sparse_transfer.json", sparse_transfer),
    "sparse_transfer_upstream": ("sparse_transfer.json", sparse_transfer_upstream),
    "sparse_transfer_objectives": ("sparse_transfer.json", sparse_transfer_objectives),
    "sparse_transfer_zero_shot": ("sparse_transfer.json", sparse_transfer_zero_shot),
    "data_prep": ("data_prep.json", data_prep),
    "engine_bench": ("engine_bench.json", engine_bench),
    "engine_bench_v3": ("engine_bench_v3.json", engine_bench),
    "engine_bench_v4": ("engine_bench_v4.json", engine_bench),
    "engine_bench_int8_v5": ("engine_bench_int8_v5.json", engine_bench),
    "engine_bench_fp32_v6": ("engine_bench_fp32_v6.json", engine_bench),
    "engine_bench_v7": ("engine_bench_v7.json", engine_bench),
    "engine_bench_fp32_v8": ("engine_bench_fp32_v8.json", engine_bench),
    "engine_bench_v9": ("engine_bench_v9.json", engine_bench),
    "engine_bench_v10": ("engine_bench_v10.json", engine_bench),
    "engine_bench_v11": ("engine_bench_v11.json", engine_bench),
    "engine_bench_avx2_v1": ("engine_bench_avx2_v1.json", engine_bench),
    "engine_bench_avx2_v2": ("engine_bench_avx2_v2.json", engine_bench),
    "engine_bench_avx2_v3": ("engine_bench_avx2_v3.json", engine_bench),
    "engine_bench_avx2_v4": ("engine_bench_avx2_v4.json", engine_bench),
    "engine_bench_avx2_int8_v5": ("engine_bench_avx2_int8_v5.json", engine_bench),
    "engine_bench_avx2_int8_v6": ("engine_bench_avx2_int8_v6.json", engine_bench),
    "engine_bench_avx2_fp32_90_v6": ("engine_bench_avx2_fp32_90_v6.json", engine_bench),
    "engine_bench_avx2_v7": ("engine_bench_avx2_v7.json", engine_bench),
    "engine_bench_avx2_v8": ("engine_bench_avx2_v8.json", engine_bench),
    "engine_first_call_avx2": ("engine_first_call_avx2.json", engine_bench),
    "engine_bench_vnni_v1": ("engine_bench_vnni_v1.json", engine_bench),
    "engine_bench_vnni_v2": ("engine_bench_vnni_v2.json", engine_bench),
    "engine_bench_vnni_b1_v2": ("engine_bench_vnni_b1_v2.json", engine_bench),
    "engine_bench_vnni_fp32_v2": ("engine_bench_vnni_fp32_v2.json", engine_bench),
    "engine_bench_vnni_fp32_v3": ("engine_bench_vnni_fp32_v3.json", engine_bench),
    "engine_bench_vnni_fp32_v4": ("engine_bench_vnni_fp32_v4.json", engine_bench),
    "engine_bench_vnni_fp32_v4_rerun": ("engine_bench_vnni_fp32_v4_rerun.json", engine_bench),
    "engine_bench_vnni_int8_b1_v3": ("engine_bench_vnni_int8_b1_v3.json", engine_bench),
    "engine_first_call_vnni": ("engine_first_call_vnni.json", engine_bench),
    "engine_first_call_vnni_v2": ("engine_first_call_vnni_v2.json", engine_bench),
    "engine_first_call_vnni_v3": ("engine_first_call_vnni_v3.json", engine_bench),
    "engine_bench_avx2_int8_v7_unbound": ("engine_bench_avx2_int8_v7_unbound.json", engine_bench),
    "int8_kernels": ("int8_kernels.json", int8_kernels),
    "fp32_kernels": ("fp32_kernels.json", fp32_kernels),
    "pipeline_throughput": ("pipeline_throughput.json", pipeline_throughput),
    "pipeline_throughput_v11": ("pipeline_throughput_v11.json", pipeline_throughput),
    "pipeline_throughput_avx2_v1": ("pipeline_throughput_avx2_v1.json", pipeline_throughput),
    "pipeline_throughput_avx2_v2": ("pipeline_throughput_avx2_v2.json", pipeline_throughput),
    "pipeline_throughput_avx2_v3": ("pipeline_throughput_avx2_v3.json", pipeline_throughput),
    "pipeline_throughput_avx2_v4": ("pipeline_throughput_avx2_v4.json", pipeline_throughput),
    "pipeline_throughput_avx2_v6": ("pipeline_throughput_avx2_v6.json", pipeline_throughput),
    "pipeline_throughput_vnni_v1": ("pipeline_throughput_vnni_v1.json", pipeline_throughput),
    "pipeline_throughput_vnni_v2": ("pipeline_throughput_vnni_v2.json", pipeline_throughput),
    "pipeline_throughput_vnni_v3": ("pipeline_throughput_vnni_v3.json", pipeline_throughput),
    "pair_throughput_vnni_v1": ("pair_throughput_vnni_v1.json", pair_throughput),
    "pair_throughput_vnni_buckets_v1": ("pair_throughput_vnni_buckets_v1.json", pair_throughput),
    "streams": ("streams.json", streams),
    "engine_overhead_avx2_v1": ("engine_overhead_avx2_v1.json", engine_overhead),
    "fp32_panels_avx2": ("fp32_panels_avx2.json", fp32_panels),
    "fp32_panels_tuned_vnni": ("fp32_panels_tuned_vnni.json", fp32_panels_tuned),
    "fp32_order_vnni": ("fp32_order_vnni.json", fp32_order),
    "fp32_run_order_vnni": ("fp32_run_order_vnni.json", fp32_run_order),
    "fp32_panels_tuned_vnni_v2": ("fp32_panels_tuned_vnni_v2.json", fp32_panels_tuned),
    "int8_block4_layout_avx2": ("int8_block4_layout_avx2.json", int8_block4_layout),
}
