"""predict and evaluate_deployment CLIs."""

import json
import re
import shutil

import pytest

from sparsecore.cli.evaluate_deployment import main as evaluate_main
from sparsecore.cli.predict import main as predict_main


@pytest.mark.parametrize("kind", ["txt", "csv", "jsonl", "pairs", "parquet", "saved"])
def test_predict_file_formats(kind, pruned_minilm, tmp_path):
    import datasets

    texts = ["a gripping, beautifully acted film", "a dull, lifeless mess", "fine"]
    src = tmp_path / f"in.{'csv' if kind == 'pairs' else kind}"
    extra = []
    if kind in ("parquet", "saved"):
        ds = datasets.Dataset.from_dict({"id": [0, 1, 2], "text": texts})
        ds.to_parquet(str(src)) if kind == "parquet" else ds.save_to_disk(str(src))
    elif kind == "txt":
        src.write_text("\n".join(texts) + "\n\n")
    elif kind == "csv":
        src.write_text("id,text\n" + "\n".join(f'{i},"{t}"' for i, t in enumerate(texts)) + "\n")
    elif kind == "jsonl":
        src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    else:
        src.write_text("a,b\n" + "\n".join(f'"{t}","{t}"' for t in texts) + "\n")
        extra = ["--text_column", "a", "--text_pair_column", "b"]
    out = tmp_path / "preds.jsonl"
    deployment = pruned_minilm / "deployment"
    if kind == "pairs":  # the same graph declared a pair model (the reading of pair files is what is tested)
        deployment = tmp_path / "pair-deployment"
        shutil.copytree(pruned_minilm / "deployment", deployment)
        info = json.loads((deployment / "sparsecore_deployment.json").read_text())
        (deployment / "sparsecore_deployment.json").write_text(json.dumps({**info, "text_pairs": True}))
    predict_main(["--model_path", str(deployment), "--input", str(src), "--output", str(out),
                  "--top_k", "2", *extra])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3
    assert all(r["label"] in ("negative", "positive") and len(r["labels"]) == 2 for r in rows)


def test_predict_streams_in_chunks_with_workers_in_input_order(pruned_minilm, tmp_path):
    from sparsecore.tasks import load_data, sample_glue_dir

    texts = [t[0] for t in load_data("sst2", sample_glue_dir()).evals["validation"].texts[:23]]
    src = tmp_path / "in.txt"
    src.write_text("\n".join(texts) + "\n")
    outputs = {}
    for workers, chunk in ((1, 1024), (2, 3)):
        out = tmp_path / f"preds-{workers}.jsonl"
        predict_main(["--model_path", str(pruned_minilm), "--input", str(src), "--output", str(out), "--engine",
                      "sparsecore", "--num_workers", str(workers), "--chunk_size", str(chunk), "--batch_size", "4"])
        outputs[workers] = [json.loads(line) for line in out.read_text().splitlines()]
        assert not (tmp_path / f"preds-{workers}.jsonl.partial").exists()
    assert [r["text"] for r in outputs[2]] == texts
    assert [r["label"] for r in outputs[2]] == [r["label"] for r in outputs[1]]


def test_evaluate_deployment_matches_training_eval(pruned_minilm, tmp_path, capsys):
    """The bundled SST-2 validation set: ONNX accuracy equals the PyTorch pipeline's labels."""
    from sparsecore import Pipeline
    from sparsecore.tasks import load_data, sample_glue_dir

    evaluate_main(["--model_path", str(pruned_minilm), "--task_name", "sst2", "--glue_dir", str(sample_glue_dir())])
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["eval_samples"] == 872
    split = load_data("sst2", sample_glue_dir()).evals["validation"]
    labels = Pipeline.create(model_path=pruned_minilm, batch_size=32).logits([t[0] for t in split.texts]).argmax(1)
    assert metrics["eval_accuracy"] == pytest.approx(float((labels == split.labels).mean()))
    assert (pruned_minilm / "deployment" / "eval_onnx_results.json").is_file()


@pytest.mark.parametrize("argv, pattern", [
    (["--input", "{tmp}/none.txt"], "input file not found"),
    (["--input", "{csv}", "--text_column", "body"], "no column 'body'"),
    (["--input", "{empty}"], "no text lines"),
    (["--input", "{parquet}", "--text_column", "body"], "no column 'body'"),
    (["--input", "{csv}", "--model_path", "{tmp}/nowhere"], "model path does not exist"),
    (["--input", "{csv}", "--num_workers", "0"], "--num_workers is 0"),
])
def test_predict_bad_input(argv, pattern, pruned_minilm, tmp_path, capsys):
    (tmp_path / "in.csv").write_text("text\nhello\n")
    (tmp_path / "empty.txt").write_text("\n\n")
    import datasets

    datasets.Dataset.from_dict({"text": ["hello"]}).to_parquet(str(tmp_path / "in.parquet"))
    base = ["--model_path", str(pruned_minilm), "--output", str(tmp_path / "o.jsonl")]
    argv = base + [a.format(tmp=tmp_path, csv=tmp_path / "in.csv", empty=tmp_path / "empty.txt",
                                 parquet=tmp_path / "in.parquet") for a in argv]
    with pytest.raises(SystemExit) as info:
        predict_main(argv)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert info.value.code == 2 and len(err) == 1 and re.search(pattern, err[0]), err
    assert not (tmp_path / "o.jsonl").exists()


def test_evaluate_bad_task(pruned_minilm, capsys):
    with pytest.raises(SystemExit) as info:
        evaluate_main(["--model_path", str(pruned_minilm), "--task_name", "squad"])
    assert info.value.code == 2 and "unknown GLUE task 'squad'" in capsys.readouterr().err


def test_evaluate_refuses_a_task_with_other_labels(pruned_minilm, glue_dir, capsys):
    with pytest.raises(SystemExit) as info:
        evaluate_main(["--model_path", str(pruned_minilm), "--task_name", "rte", "--glue_dir", str(glue_dir)])
    assert info.value.code == 2 and "do not match task rte" in capsys.readouterr().err


def test_text_files_read_the_same_whole_and_streamed(tmp_path):
    """Lines end at \\n, \\r\\n or \\r in both readers; a line separator or form feed inside a text stays in it."""
    from sparsecore.cli.predict import read_texts, stream_texts

    src = tmp_path / "in.TXT"
    src.write_bytes("a film\u2028with a break\r\nsecond\rthird\x0cpage\n\n  \nlast".encode("utf-8"))
    whole = read_texts(src, "text", None)
    _, chunks = stream_texts(src, "text", None, 2)
    assert whole == [t for chunk in chunks for t in chunk] == ["a film\u2028with a break", "second",
                                                               "third\x0cpage", "last"]
