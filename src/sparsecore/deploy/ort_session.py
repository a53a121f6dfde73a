"""ONNX Runtime sessions that compute integer matmuls exactly on every x86 CPU, at full speed where they can.

On x86 CPUs without VNNI (AVX2, or AVX-512 without VNNI) ONNX Runtime's default u8·s8 integer
matmul adds pairs of products in 16 bits (``vpmaddubsw``) and saturates (a pair of products reaches
2·255·128, beyond int16), so a quantized BERT's logits drift from the fake-quant model; VNNI's
``vpdpbusd`` accumulates in int32 and is exact. On CPUs without VNNI, ``session.x64quantprecision`` makes
ONNX Runtime use its exact u8·u8 kernels for graphs with ``MatMulInteger`` (our integer export); on VNNI CPUs
the default kernels are already exact and the option would only select slower ones, so it is not set there.
On QDQ graphs ONNX Runtime 1.32's rewrite fails to initialize the session with that option ("Attempt to
replace the existing tensor"): a QDQ graph on a CPU without VNNI is run with ONNX Runtime's QDQ fusion off
instead (``session.disable_quant_qdq``: float matmuls of the dequantized values — exact, not int8-fast;
VNNI CPUs keep the fused int8 kernels).
"""

from __future__ import annotations

from pathlib import Path


def ort_session(onnx_path: str | Path | bytes, threads: int | None = None, ops: set[str] | None = None):
    """An ``onnxruntime.InferenceSession`` on the CPU with exact integer matmuls (``onnx_path``: a file, or a
    serialized model with its ``ops`` given).

    On a CPU without VNNI, graphs with ``MatMulInteger`` get ``session.x64quantprecision`` and QDQ graphs
    ``session.disable_quant_qdq``; every other graph (float, or any graph on a VNNI CPU) uses the defaults.
    ``threads`` sets ``intra_op_num_threads`` (None: ONNX Runtime's default). ``ops``: the graph's op types when
    the caller has read them (:func:`op_types`); otherwise the graph is read once (without external data) for them.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # fatal only: a graph ONNX Runtime refuses is reported as one SparsecoreError line
    ops = op_types(onnx_path) if ops is None else ops
    if not cpu_has_vnni():
        if "MatMulInteger" in ops:
            options.add_session_config_entry("session.x64quantprecision", "1")
        elif "QuantizeLinear" in ops:
            options.add_session_config_entry("session.disable_quant_qdq", "1")
    if threads is not None:
        options.intra_op_num_threads = threads
    model = onnx_path if isinstance(onnx_path, bytes) else str(onnx_path)
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def op_types(onnx_path: str | Path) -> set[str]:
    """The op types of the graph's top-level nodes."""
    from sparsecore import onnx_proto

    return {node.op_type for node in onnx_proto.read(onnx_path).graph.node}


def cpu_has_vnni() -> bool:
    """True on x86 CPUs with AVX-512 VNNI or AVX-VNNI (Linux: read from /proc/cpuinfo)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags
