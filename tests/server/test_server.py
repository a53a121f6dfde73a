"""sparsecore.server as a real subprocess on loopback, talked to with a real HTTP client."""

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

from sparsecore import Pipeline
from sparsecore.tasks import load_data, sample_glue_dir

TEXTS = [t[0] for t in load_data("sst2", sample_glue_dir()).evals["validation"].texts]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(*flags):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sparsecore.server", *map(str, flags), "--port", str(port),
                             "--log_level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}: {proc.stderr.read()}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).json() == {"status": "OK"}:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("server did not become ready")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.fixture(scope="module")
def minilm_server(pruned_minilm):
    """Started as DeepSparse's docs start deepsparse.server, one word changed (the endpoint is named after the task)."""
    proc, url = start("--task", "sentiment_analysis", "--model_path", pruned_minilm, "--batch_size", 16,
                      "--num-workers", 2)
    yield url
    assert stop(proc) == 0


def test_round_trip_equals_the_pipeline(minilm_server, pruned_minilm):
    pipe = Pipeline.create(model_path=pruned_minilm, engine="sparsecore", batch_size=16)
    one = httpx.post(f"{minilm_server}/v2/models/sentiment_analysis/infer", json={"sequences": TEXTS[0]}).json()
    many = httpx.post(f"{minilm_server}/v2/models/sentiment_analysis/infer", json={"sequences": TEXTS[:40]}).json()
    want = pipe(TEXTS[:40])
    assert one["labels"] == [want[0]["label"]] and one["scores"] == pytest.approx([want[0]["score"]], abs=1e-5)
    assert many["labels"] == [w["label"] for w in want]
    np.testing.assert_allclose(many["scores"], [w["score"] for w in want], atol=1e-5)


def test_metadata_docs_and_metrics(minilm_server, pruned_minilm):
    models = httpx.get(f"{minilm_server}/v2/models").json()["models"]
    assert [m["infer"] for m in models] == ["/v2/models/sentiment_analysis/infer"] and models[0]["streams"] == 2
    assert models[0]["labels"] == ["negative", "positive"]
    assert httpx.get(f"{minilm_server}/v2/models/sentiment_analysis").json()["model_path"].endswith("deployment")
    assert httpx.get(f"{minilm_server}/v2/models/sentiment_analysis/ready").json() == {"status": "OK"}
    assert httpx.get(f"{minilm_server}/v2/health/live").json() == {"status": "OK"}
    assert "swagger" in httpx.get(f"{minilm_server}/docs").text.lower()
    assert "/v2/models/sentiment_analysis/infer" in httpx.get(f"{minilm_server}/openapi.json").json()["paths"]
    httpx.post(f"{minilm_server}/v2/models/sentiment_analysis/infer", json={"sequences": ["fine"]})
    metrics = httpx.get(f"{minilm_server}/metrics").text
    for name in ("sparsecore_requests_total", "sparsecore_request_latency_seconds_bucket", "sparsecore_batch_items",
                 "sparsecore_queue_depth", 'sparsecore_requests_in_flight{endpoint="sentiment_analysis"} 0.0'):
        assert name in metrics


@pytest.mark.parametrize("body, code, pattern", [
    (b"{not json", 400, "not JSON"),
    (json.dumps({"text": "x"}).encode(), 422, 'no "sequences" field'),
    (json.dumps({"sequences": []}).encode(), 422, "non-empty list"),
    (json.dumps({"sequences": 5}).encode(), 422, "non-empty list"),
    (json.dumps({"sequences": ["a"] * 2000}).encode(), 413, "2000 sequences"),
    (json.dumps({"sequences": ["x" * 100_001]}).encode(), 413, "longer than"),
    (json.dumps({"sequences": [["A man eats.", "Someone eats."]]}).encode(), 422,
     "single sentences but got sentence pairs"),
    (json.dumps({"sequences": ["a"], "top": 2}).encode(), 422, "unknown field(s) top"),
])
def test_bad_requests_get_a_4xx_json_error_and_the_server_keeps_serving(minilm_server, body, code, pattern):
    answer = httpx.post(f"{minilm_server}/v2/models/sentiment_analysis/infer", content=body,
                        headers={"content-type": "application/json"})
    assert answer.status_code == code and pattern in answer.json()["error"]
    infer = f"{minilm_server}/v2/models/sentiment_analysis/infer"
    assert httpx.post(infer, json={"sequences": "fine"}).status_code == 200
    assert httpx.post(f"{minilm_server}/v2/models/nope/infer", json={"sequences": "x"}).status_code == 404


def test_load_many_clients_nothing_lost(tiny_deployment):
    """2,000 requests from 32 concurrent clients (1–4 texts each, a few malformed) through micro-batching: none
    lost, every well-formed one answered with the Pipeline's labels, the malformed ones 422."""
    proc, url = start("--task", "text-classification", "--model_path", tiny_deployment, "--engine", "sparsecore",
                      "--batch_size", 32, "--max_delay_ms", 5, "--name", "tiny")
    pipe = Pipeline.create(model_path=tiny_deployment, engine="sparsecore", batch_size=32)
    expected = {r: t["label"] for r, t in zip(TEXTS[:200], pipe(TEXTS[:200]))}
    rng = np.random.default_rng(0)
    requests = []
    for i in range(2000):
        if i % 97 == 13:
            requests.append(({"sequence": "typo"}, None))
        else:
            texts = [TEXTS[j] for j in rng.integers(0, 200, rng.integers(1, 5))]
            requests.append(({"sequences": texts}, [expected[t] for t in texts]))

    async def load():
        limits = asyncio.Semaphore(32)
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            async def one(body):
                async with limits:
                    start_time = time.perf_counter()
                    answer = await client.post("/v2/models/tiny/infer", json=body)
                    return answer, time.perf_counter() - start_time
            began = time.perf_counter()
            results = await asyncio.gather(*(one(body) for body, _ in requests))
            return results, time.perf_counter() - began

    try:
        results, wall = asyncio.run(load())
        latencies = sorted(t for _, t in results)
        for (answer, _), (_, want) in zip(results, requests):
            if want is None:
                assert answer.status_code == 422
            else:
                assert answer.status_code == 200 and answer.json()["labels"] == want
        p50, p99 = latencies[len(latencies) // 2], latencies[int(0.99 * len(latencies))]
        print(f"load: {len(requests)} requests, 32 clients: {len(requests) / wall:.0f} requests/s, p50 "
              f"{1e3 * p50:.1f} ms, p99 {1e3 * p99:.1f} ms")
        batches = httpx.get(f"{url}/metrics").text
        assert 'sparsecore_requests_total{code="422",endpoint="tiny"}' in batches

        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sigterm_answers_the_requests_in_flight_then_exits(tiny_deployment):
    """Requests held by a batching window when SIGTERM arrives are all answered; then the server exits 0."""
    proc, url = start("--task", "text-classification", "--model_path", tiny_deployment, "--batch_size", 8,
                      "--max_batch_size", 512, "--max_delay_ms", 3000, "--name", "tiny")

    async def in_flight():
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            await client.get("/v2/health/ready")
            tasks = [asyncio.create_task(client.post("/v2/models/tiny/infer", json={"sequences": [text]}))
                     for text in TEXTS[:64]]
            gauge = 'sparsecore_requests_in_flight{endpoint="tiny"} '
            for _ in range(200):  # until the server holds all 64 (the 3 s window keeps them unanswered)
                text = (await client.get("/metrics")).text
                if gauge in text and float(text.split(gauge)[1].split()[0]) == 64:
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError(f"the server never held the 64 requests: {text}")
            proc.send_signal(signal.SIGTERM)
            return await asyncio.gather(*tasks, return_exceptions=True)

    try:
        answers = asyncio.run(in_flight())
        assert [getattr(a, "status_code", repr(a)) for a in answers] == [200] * 64
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_bad_config_exits_2_with_one_line(tmp_path, pruned_minilm):
    config = tmp_path / "server.yaml"
    config.write_text(f"num_cores: 1\nendpoints:\n  - task: text_classification\n    model: {pruned_minilm}\n"
                      "    batch_size: 4\n    loggers: {}\n    colour: blue\n")
    done = subprocess.run([sys.executable, "-m", "sparsecore.server", "--config_file", str(config)],
                          capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "unknown key(s) colour, loggers" in lines[0], done.stderr
