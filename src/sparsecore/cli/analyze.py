"""Why a deployment runs as fast as it does on this host: ``sparsecore.analyze DEPLOYMENT [--compare OTHER]``.

Per encoder Linear: shape, sparsity, the structure found (dense, unstructured, 1×4 blocks, N:M), the format our
engine runs it in and why; the host's CPU and the integer path its kernels take; milliseconds per stage of a
forward pass (the engine's own profile, random tokens of ``-b`` × ``-seq_len``); agreement with ONNX Runtime on
the same inputs; and warnings that explain slowness (Linears too dense to run sparse, int8 without VNNI,
unstructured int8, an export our engine refuses). A text report by default, ``--json`` for the same as JSON,
``--png FILE`` for a picture (time per stage, sparsity per Linear). ``--compare OTHER`` analyses a second
deployment (e.g. the dense model) and prints the two side by side.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from sparsecore.cli.parser import OneLineArgumentParser, user_errors
from sparsecore.errors import SparsecoreError

ROLES = ("query", "key", "value", "attn_out", "intermediate", "output")
ENGINE_KEY = {"query": "qkv", "key": "qkv", "value": "qkv", "attn_out": "attn_out", "intermediate": "intermediate",
              "output": "out"}


def structure(w: np.ndarray) -> str:
    """The sparsity pattern of a weight (N, K): ``empty``, ``dense``, ``block4`` (1×4 blocks along K, all or
    nothing), ``block4 (97% of blocks full)`` (block-pruned, then some weights of kept blocks rounded to a zero
    int8 code: at most 25% more products than non-zeros, the engine's rule for its block kernel), ``N:M`` (at most
    N non-zeros in every M consecutive weights of a row, M = 4 or 8, N < M) or ``unstructured``."""
    nonzero = w != 0
    count = int(nonzero.sum())
    if count == 0:
        return "empty"
    if count == w.size:
        return "dense"
    n, k = w.shape
    for m in (4, 8):
        if k % m:
            continue
        groups = nonzero.reshape(n, k // m, m).sum(axis=2)
        if m == 4 and np.all((groups == 0) | (groups == 4)):
            return "block4"
        stored = int((groups > 0).sum())
        if m == 4 and 4 * stored <= 1.25 * count and int((groups == 4).sum()) >= 0.5 * stored:
            return f"block4 ({(groups == 4).sum() / stored:.0%} of blocks full)"
        most = int(groups.max())
        if most <= m // 2 and count >= 0.9 * most * groups.size:  # the pattern fills its quota
            return f"{most}:{m}"
    return "unstructured"


def _why(fmt: str, sparsity: float) -> str:
    from sparsecore.deploy.linears import DENSE_BELOW
    from sparsecore.kernels.isa import csr_activations, integer_path

    if fmt == "dense":
        return f"sparsity {sparsity:.0%} < {DENSE_BELOW:.0%}: BLAS beats the sparse kernel below this"
    if fmt == "csr":
        return "sparse: CSR kernel (any pattern; features × tokens, no AVX2 or forced)"
    if fmt == "block4":
        return "forced 1×4 block kernel (features × tokens)"
    if fmt.startswith("csr "):
        return f"sparse: CSR kernel (any pattern) on token blocks, {fmt.split()[1]} FMAs"
    if fmt.startswith("block4 "):
        return f"1×4 blocks: block kernel on token blocks, {fmt.split()[1]} FMAs"
    if fmt == "int8 dense":
        return f"sparsity {sparsity:.0%} < {DENSE_BELOW:.0%}: BLAS on the codes"
    if fmt.startswith("int8 block4"):
        return f"1×4 blocks: integer dot products ({integer_path()})"
    if fmt.startswith("int8 quads"):
        return f"any pattern: each row's non-zeros in quads, integer dot products ({integer_path()})"
    if fmt.startswith("int8 csr "):
        return (f"scattered codes, forced: the token-blocked CSR kernel on float32 codes ({fmt.split()[2]} FMAs, "
                "exact products)")
    if fmt == "int8 csr":
        return (f"scattered codes: the CSR kernel on {csr_activations()} codes (in blocks they would multiply "
                "mostly zeros)")
    return ""


def analyze(path: str, batch: int, seq: int, runs: int) -> dict:
    """The report of one deployment (see the module docstring) as a dict."""
    from sparsecore.deploy.model_folder import locate, random_feeds
    from sparsecore.deploy.sparse_model import load_encoder_arrays
    from sparsecore.kernels.isa import cpu_name, integer_path, supported

    deployment = locate(path)
    seq = min(seq, deployment.max_positions)
    report = {"deployment": str(deployment.folder), "family": deployment.family.name, "cpu": cpu_name(),
              "integer_path": integer_path(), "batch": batch, "sequence_length": seq, "linears": [],
              "stages_ms": {}, "warnings": []}
    try:
        arrays = load_encoder_arrays(deployment.onnx_path, deployment.folder / "config.json")
    except SparsecoreError as exc:
        report["warnings"].append(f"engine='sparsecore' cannot run this export: {exc}")
        return report
    from sparsecore.deploy.int8_model import QuantLinear
    from sparsecore.deploy.sparse_engine import SparsecoreEngine

    engine = SparsecoreEngine(deployment.onnx_path, batch, [seq])
    report["quantized"] = arrays.quantized
    report["delegated"] = engine.describe()["delegated"]
    engine_layers = engine.model.layers if engine.model is not None else None
    for i, layer in enumerate(arrays.layers):
        for role in ROLES:
            spec = layer[role]
            w = spec.codes if isinstance(spec, QuantLinear) else spec[0]
            sparsity = 1.0 - np.count_nonzero(w) / w.size
            fmt = engine_layers[i][ENGINE_KEY[role]].format if engine_layers else "onnxruntime (delegated)"
            report["linears"].append({"name": f"layer.{i}.{role}", "shape": list(w.shape), "sparsity": sparsity,
                                      "structure": structure(w), "format": fmt,
                                      "why": _why(fmt, sparsity) if engine_layers else "no sparse Linear"})
    feeds = random_feeds(deployment, batch, seq)
    engine(feeds)  # warm-up: kernels compiled or loaded, buffers sized
    profile: dict[str, float] = {}
    for _ in range(runs):
        engine(feeds, profile=profile)
    report["stages_ms"] = {name: ms / runs for name, ms in sorted(profile.items(), key=lambda kv: -kv[1])}
    report["forward_ms"] = sum(report["stages_ms"].values())
    from sparsecore.deploy.engines import OnnxRuntimeEngine

    ours, theirs = engine(feeds), OnnxRuntimeEngine(deployment.onnx_path, batch, [seq])(feeds)
    report["onnxruntime_agreement"] = {"max_abs_logit_diff": float(np.abs(ours - theirs).max()),
                                       "labels_equal": int((ours.argmax(1) == theirs.argmax(1)).sum()),
                                       "inputs": int(len(ours))}
    report["warnings"] += _warnings(report, supported)
    return report


def _warnings(report: dict, supported) -> list[str]:
    from sparsecore.deploy.linears import DENSE_BELOW

    out = []
    dense = [r["name"] for r in report["linears"] if r["sparsity"] < DENSE_BELOW]
    if report.get("delegated"):
        out.append("no encoder Linear is sparse enough for our kernels: the model runs on ONNX Runtime "
                   f"(prune to {DENSE_BELOW:.0%} or more to gain from sparsity)")
    elif dense:
        out.append(f"{len(dense)} of {len(report['linears'])} Linears are below {DENSE_BELOW:.0%} sparsity and run "
                   f"dense (e.g. {dense[0]}): prune them further to speed them up")
    if report.get("quantized"):
        if not (supported("avx512_vnni") or supported("avx_vnni")):
            out.append("int8 model on a CPU without VNNI: integer products take the AVX2 path (vpmaddubsw + vpmaddwd), "
                       "about half the VNNI rate")
        if any(r["format"].startswith("int8 csr") for r in report["linears"]):
            out.append("unstructured int8 Linears run the fp32 kernel on integer codes (no faster than fp32; this "
                       "CPU has no integer path for the quad kernel, or the format was forced)")
    agreement = report.get("onnxruntime_agreement")
    if agreement and agreement["labels_equal"] < agreement["inputs"]:
        out.append(f"labels differ from ONNX Runtime on {agreement['inputs'] - agreement['labels_equal']} of "
                   f"{agreement['inputs']} random inputs (max |Δlogit| {agreement['max_abs_logit_diff']:.2g})")
    return out


def render(report: dict) -> str:
    """The text report."""
    lines = [f"Deployment: {report['deployment']} ({report['family']}"
             + (", int8" if report.get("quantized") else "") + ")",
             f"Host: {report['cpu']} · integer path {report['integer_path']}"]
    if report.get("delegated"):
        lines.append(f"Engine: sparsecore, delegated to {report['delegated']}")
    if report["linears"]:
        width = max(13, *(len(r["structure"]) + 2 for r in report["linears"]))
        lines += ["", f"{'Linear':<24}{'shape':>13}{'sparsity':>10}  {'structure':<{width}}{'format':<26}why"]
        for r in report["linears"]:
            shape = "×".join(map(str, r["shape"]))
            lines.append(f"{r['name']:<24}{shape:>13}{r['sparsity']:>10.1%}  {r['structure']:<{width}}{r['format']:<26}"
                         f"{r['why']}")
    if report["stages_ms"]:
        total = report["forward_ms"]
        lines += ["", f"Stages (ms per forward, batch {report['batch']} × {report['sequence_length']} tokens): "
                      f"{total:.2f} ms"]
        lines += [f"  {name:<56}{ms:>9.2f}  {ms / total:>5.1%}" for name, ms in report["stages_ms"].items()]
    agreement = report.get("onnxruntime_agreement")
    if agreement:
        lines += ["", f"Agreement with ONNX Runtime: max |Δlogit| {agreement['max_abs_logit_diff']:.2g}, labels "
                      f"{agreement['labels_equal']}/{agreement['inputs']}"]
    lines += ["", "Warnings:" if report["warnings"] else "Warnings: none"] + [f"  - {w}" for w in report["warnings"]]
    return "\n".join(lines)


def render_comparison(a: dict, b: dict) -> str:
    """Two reports side by side: forward time, stages, mean sparsity."""
    def mean_sparsity(r):
        return np.mean([x["sparsity"] for x in r["linears"]]) if r["linears"] else float("nan")

    lines = [f"{'':<40}{'A':>14}{'B':>14}{'A / B':>10}",
             f"{'deployment':<40}{Path(a['deployment']).parent.name:>14.14}{Path(b['deployment']).parent.name:>14.14}",
             f"{'mean Linear sparsity':<40}{mean_sparsity(a):>14.1%}{mean_sparsity(b):>14.1%}"]
    fa, fb = a.get("forward_ms"), b.get("forward_ms")
    if fa and fb:
        lines.append(f"{'forward ms':<40}{fa:>14.2f}{fb:>14.2f}{fa / fb:>10.2f}")
    stage = lambda name: name.split(" (")[0]  # noqa: E731 - stage names without their format
    sa, sb = {}, {}
    for src, dst in ((a["stages_ms"], sa), (b["stages_ms"], sb)):
        for name, ms in src.items():
            dst[stage(name)] = dst.get(stage(name), 0.0) + ms
    for name in sorted(set(sa) | set(sb), key=lambda n: -max(sa.get(n, 0), sb.get(n, 0))):
        x, y = sa.get(name), sb.get(name)
        ratio = f"{x / y:>10.2f}" if x and y else f"{'–':>10}"
        lines.append(f"  {name:<38}{(x or 0):>14.2f}{(y or 0):>14.2f}{ratio}")
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    """Time per stage and sparsity per Linear, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    stages = report["stages_ms"]
    left.barh(list(stages)[::-1], list(stages.values())[::-1], color="#e07b39")
    left.set_xlabel(f"ms per forward (batch {report['batch']} × {report['sequence_length']} tokens)")
    left.tick_params(axis="y", labelsize=7)
    left.set_title(f"{report['forward_ms']:.1f} ms per forward" if stages else "no profile")
    linears = report["linears"]
    colors = {"query": "#3b7dd8", "key": "#5b9de8", "value": "#7bbdf8", "attn_out": "#777777",
              "intermediate": "#e07b39", "output": "#c05b19"}
    for role, color in colors.items():
        xs = [i for i, r in enumerate(linears) if r["name"].endswith(role)]
        right.bar(xs, [100 * linears[i]["sparsity"] for i in xs], color=color, label=role, width=0.9)
    right.set_ylabel("sparsity %")
    right.set_xlabel("encoder Linear (layer by layer)")
    right.set_ylim(0, 100)
    right.legend(fontsize=7, ncol=3)
    right.set_title("sparsity per Linear")
    fig.suptitle(f"{report['deployment']} on {report['cpu']}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = OneLineArgumentParser(prog="sparsecore.analyze", description=__doc__)
    p.add_argument("model_path", help="a deployment folder, a trained folder holding deployment/, or a model.onnx")
    p.add_argument("--compare", default=None, help="a second deployment to set beside the first")
    p.add_argument("-b", "--batch_size", type=int, default=1)
    p.add_argument("-seq_len", "--sequence_length", type=int, default=128)
    p.add_argument("--runs", type=int, default=5, help="profiled forward passes (averaged)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--png", type=Path, default=None, help="write a picture of the report")
    args = p.parse_args(argv)
    with user_errors():
        for name, value in (("--batch_size", args.batch_size), ("--sequence_length", args.sequence_length),
                            ("--runs", args.runs)):
            if value < 1:
                raise SparsecoreError(f"{name} is {value}", "sparsecore.analyze", "use 1 or more")
        if args.png is not None:
            from sparsecore.file_checks import check_writable

            check_writable(args.png, f"--png {args.png}")
        reports = [analyze(path, args.batch_size, args.sequence_length, args.runs)
                   for path in filter(None, (args.model_path, args.compare))]
    if args.json:
        print(json.dumps(reports[0] if len(reports) == 1 else {"a": reports[0], "b": reports[1]}, indent=2))
    else:
        print("\n\n".join(render(r) for r in reports))
        if len(reports) == 2:
            print("\n" + render_comparison(*reports))
    if args.png is not None:
        plot(reports[0], args.png)
        sys.stderr.write(f"wrote {args.png}\n")


if __name__ == "__main__":
    main()
