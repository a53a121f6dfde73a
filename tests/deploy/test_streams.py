"""Streams: several calls at once on one copy of the weights, each answer what a sequential call gives."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from sparsecore import Pipeline
from sparsecore.errors import SparsecoreError
from sparsecore.tasks import load_data, sample_glue_dir


@pytest.fixture(scope="module")
def batches(pruned_minilm):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(pruned_minilm / "deployment" / "tokenizer.json"))
    tok.enable_padding()
    texts = [t[0] for t in load_data("sst2", sample_glue_dir()).evals["validation"].texts[:48]]
    out = []
    for i in range(0, 48, 8):
        enc = tok.encode_batch(texts[i:i + 8])
        out.append({"input_ids": np.array([e.ids for e in enc], np.int64),
                    "attention_mask": np.array([e.attention_mask for e in enc], np.int64),
                    "token_type_ids": np.array([e.type_ids for e in enc], np.int64)})
    return out


def test_sparsecore_streams_answer_bit_for_bit_like_one_stream(pruned_minilm, batches):
    from threadpoolctl import threadpool_info

    from sparsecore.deploy.sparse_engine import SparsecoreEngine

    onnx = pruned_minilm / "deployment" / "model.onnx"
    one = SparsecoreEngine(onnx, 8, [128])
    two = SparsecoreEngine(onnx, 8, [128], num_streams=2, num_cores=2)
    assert two.describe()["streams"] == 2 and two.threads == 1 and len(two.executors) == 2
    assert two.executors[0].layers is two.executors[1].layers  # one copy of the packed weights
    blas_before = [(p["internal_api"], p["num_threads"]) for p in threadpool_info()]
    sequential = [one(f) for f in batches]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(two, batches * 2))
    for got, want in zip(together, sequential * 2):
        np.testing.assert_array_equal(got, want)
    assert all(e.last_tokens > 0 for e in two.executors)  # both executors ran
    assert [(p["internal_api"], p["num_threads"]) for p in threadpool_info()] == blas_before  # BLAS restored


def test_onnxruntime_streams_and_pipeline_submit(pruned_minilm, batches):
    from sparsecore.deploy.engines import OnnxRuntimeEngine

    onnx = pruned_minilm / "deployment" / "model.onnx"
    engine = OnnxRuntimeEngine(onnx, 8, [128], num_streams=2, num_cores=2)
    sequential = [engine(f) for f in batches]
    with ThreadPoolExecutor(4) as pool:
        for got, want in zip(pool.map(engine, batches), sequential):
            np.testing.assert_array_equal(got, want)
    pipe = Pipeline.create(model_path=pruned_minilm, engine="sparsecore", batch_size=4, num_streams=2)
    texts = ["a gripping, beautifully acted film", "a dull, lifeless mess", "fine", "moving"]
    futures = [pipe.submit(texts[i:]) for i in range(4)]
    assert [f.result() for f in futures] == [pipe(texts[i:]) for i in range(4)]
    assert "num_streams=2" in repr(pipe)


@pytest.mark.parametrize("kwargs, pattern", [({"num_streams": 0}, "num_streams is 0"),
                                             ({"num_streams": 1.5}, "num_streams is 1.5"),
                                             ({"num_cores": 0}, "num_cores is 0"),
                                             ({"num_cores": 10_000}, "num_cores is 10000")])
@pytest.mark.parametrize("engine", ["onnxruntime", "sparsecore"])
def test_bad_stream_settings_are_one_error(pruned_minilm, engine, kwargs, pattern):
    with pytest.raises(SparsecoreError, match=pattern):
        Pipeline.create(model_path=pruned_minilm, engine=engine, **kwargs)
