"""sparsecore.analyze: structure detection, the per-Linear report, stage times, warnings, PNG, --compare."""

import json
import shutil

import numpy as np
import pytest

from sparsecore.cli.analyze import analyze, main, structure
from sparsecore.kernels.isa import float_path

SPARSE = "csr" if float_path() == "generic" else f"csr {float_path()}"  # the fp32 format of an 80%-pruned Linear


def test_structure_names_the_pattern():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 16)).astype(np.float32)
    assert structure(w) == "dense" and structure(np.zeros((4, 8))) == "empty"
    assert structure(np.where(rng.random((8, 16)) > 0.8, w, 0)) == "unstructured"
    blocks = np.repeat(rng.random((8, 4)) > 0.7, 4, axis=1)
    blocks[0, :4] = True
    assert structure(np.where(blocks, w, 0)) == "block4"
    rounded = np.where(blocks, w, 0)
    rounded[0, 0] = 0  # one weight of a kept block rounded to a zero int8 code
    assert structure(rounded) == f"block4 ({1 - 1 / blocks[:, ::4].sum():.0%} of blocks full)"
    two_four = w.copy().reshape(8, 4, 4)
    two_four[..., 1:3] = 0  # 2 of every 4
    assert structure(two_four.reshape(8, 16)) == "2:4"
    four_eight = w.copy().reshape(8, 2, 8)
    four_eight[..., [0, 1, 2, 7]] = 0  # 4 of every 8, neither 2:4 nor whole 1×4 blocks
    assert structure(four_eight.reshape(8, 16)) == "4:8"
    assert structure(np.where(rng.random((3, 7)) > 0.5, 1.0, 0.0)) == "unstructured"  # K not a multiple of 4


def test_report_of_a_pruned_minilm(pruned_minilm, tmp_path, capsys):
    report = analyze(str(pruned_minilm), 2, 32, 2)
    assert len(report["linears"]) == 36 and report["integer_path"] and report["cpu"]
    assert all(abs(r["sparsity"] - 0.8) < 0.01 and r["structure"] == "unstructured" and r["format"] == SPARSE
               for r in report["linears"])
    assert report["forward_ms"] > 0 and any(name.startswith("attention") for name in report["stages_ms"])
    assert report["onnxruntime_agreement"]["labels_equal"] == 2 and not report["warnings"]
    png = tmp_path / "report.png"
    main([str(pruned_minilm), "-b", "2", "-seq_len", "32", "--runs", "1", "--png", str(png)])
    text = capsys.readouterr().out
    assert "layer.5.output" in text and "CSR kernel" in text and "Warnings: none" in text
    assert png.stat().st_size > 10_000


def test_compare_json_and_the_warnings_of_a_dense_model(pruned_minilm, tiny_model, tmp_path, capsys):
    from sparsecore.workflows import export

    shutil.copytree(tiny_model, tmp_path / "dense")
    dense = export(model_path=tmp_path / "dense", sequence_length=64).deployment
    main([str(dense), "--compare", str(pruned_minilm), "-b", "1", "-seq_len", "16", "--runs", "1", "--json"])
    both = json.loads(capsys.readouterr().out)
    assert both["a"]["delegated"].startswith("onnxruntime")
    assert "no encoder Linear is sparse" in both["a"]["warnings"][0]
    assert both["b"]["linears"][0]["format"] == SPARSE
    main([str(dense), "--compare", str(pruned_minilm), "-b", "1", "-seq_len", "16", "--runs", "1"])
    assert "forward ms" in capsys.readouterr().out


@pytest.mark.parametrize("argv, pattern", [(["-b", "0"], "--batch_size is 0"), (["--runs", "0"], "--runs is 0")])
def test_bad_flags(pruned_minilm, argv, pattern, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(pruned_minilm), *argv])
    assert exc.value.code == 2 and pattern in capsys.readouterr().err


def test_every_int8_format_is_explained():
    from sparsecore.cli.analyze import _why

    for fmt in ("int8 dense", "int8 csr", "int8 csr avx2", "int8 quads avx512_vnni", "int8 block4 avx2", "csr avx512",
                "block4 avx2"):
        assert _why(fmt, 0.9), fmt
    assert "quads" in _why("int8 quads avx_vnni", 0.9)
