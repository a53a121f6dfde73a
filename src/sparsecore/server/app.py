"""The FastAPI application: DeepSparse server's routes over sparsecore Pipelines, with Prometheus metrics.

Routes: ``GET /v2/health/ready`` and ``/v2/health/live`` (``{"status": "OK"}``), ``GET /v2`` (a greeting),
``GET /v2/models`` (every endpoint), ``GET /v2/models/<path>`` (``{"model_path": …}``), ``GET
/v2/models/<path>/ready``, ``POST /v2/models/<path>/infer`` (``{"sequences": text | [texts] | [[a, b], …]}`` →
``{"labels": […], "scores": […]}``, as DeepSparse answers), ``GET /config``, ``GET /metrics`` (Prometheus text)
and the OpenAPI docs at ``/docs``. A bad request gets a 4xx answer ``{"error": "<what> — <how to fix>"}``.
"""

from __future__ import annotations

import json
import time
from contextlib import asynccontextmanager
from dataclasses import asdict

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from sparsecore.errors import SparsecoreError
from sparsecore.server.batching import MicroBatcher
from sparsecore.server.config import Endpoint, ServerConfig

MAX_ITEMS = 1024  # items per request
MAX_CHARS = 100_000  # characters per text


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _metrics(registry: CollectorRegistry) -> dict:
    return {
        "requests": Counter("sparsecore_requests", "Inference requests answered, by endpoint and status code",
                            ["endpoint", "code"], registry=registry),
        "errors": Counter("sparsecore_request_errors", "Inference requests answered with an error (4xx, 5xx)",
                          ["endpoint", "code"], registry=registry),
        "latency": Histogram("sparsecore_request_latency_seconds", "Time from request to answer",
                             ["endpoint"], registry=registry,
                             buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10)),
        "batch": Histogram("sparsecore_batch_items", "Items per Pipeline call after micro-batching", ["endpoint"],
                           registry=registry, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)),
        "queue": Gauge("sparsecore_queue_depth", "Requests waiting to join a batch", ["endpoint"], registry=registry),
        "in_flight": Gauge("sparsecore_requests_in_flight", "Inference requests received and not yet answered",
                           ["endpoint"], registry=registry),
    }


def parse_sequences(body: bytes, pairs: bool) -> list:
    """The items of an infer request body; :class:`BadRequest` (400/413/422) for anything else."""
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(400, f"the request body is not JSON ({getattr(exc, 'msg', type(exc).__name__)}) — send "
                              '{"sequences": ["text", ...]}') from None
    if not isinstance(payload, dict) or "sequences" not in payload:
        raise BadRequest(422, 'the body has no "sequences" field — send {"sequences": ["text", ...]}')
    extra = sorted(set(payload) - {"sequences"})
    if extra:
        raise BadRequest(422, f"unknown field(s) {', '.join(extra)} — send only \"sequences\"")
    seqs = payload["sequences"]
    items = [seqs] if isinstance(seqs, str) or (pairs and _is_pair(seqs)) else seqs
    if not isinstance(items, list) or not items:
        raise BadRequest(422, '"sequences" must be a text or a non-empty list of texts')
    if len(items) > MAX_ITEMS:
        raise BadRequest(413, f"{len(items)} sequences in one request (at most {MAX_ITEMS}) — split the request")
    for item in items:
        if pairs and not _is_pair(item):
            raise BadRequest(422, "this model was trained on sentence pairs but got single texts — send "
                                  '{"sequences": [["text a", "text b"], ...]}')
        if not pairs and not isinstance(item, str):
            what = "sentence pairs" if _is_pair(item) else f"a {type(item).__name__}"
            raise BadRequest(422, f"this model was trained on single sentences but got {what} — send texts")
        if any(len(text) > MAX_CHARS for text in (item if pairs else [item])):
            raise BadRequest(413, f"a text is longer than {MAX_CHARS} characters — shorten it")
    return items


def _is_pair(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)


def build_app(config: ServerConfig, pipelines: dict[str, object]) -> FastAPI:
    """The application for ``config``; ``pipelines[endpoint.name]`` serves each endpoint."""
    registry = CollectorRegistry()
    metrics = _metrics(registry)
    batchers = {e.name: MicroBatcher(_runner(pipelines[e.name]), e.max_batch_size or e.batch_size,
                                     e.max_delay_ms / 1e3, config.num_workers,
                                     metrics["batch"].labels(e.name).observe) for e in config.endpoints}

    @asynccontextmanager
    async def lifespan(_app):
        for batcher in batchers.values():
            await batcher.start()
        yield
        for batcher in batchers.values():  # SIGTERM: uvicorn stops accepting, in-flight requests finish here
            await batcher.stop()

    app = FastAPI(title="sparsecore server", lifespan=lifespan,
                  description="Text classification over sparsecore Pipelines, with DeepSparse server's routes.")

    @app.get("/", include_in_schema=False)
    def home():
        return RedirectResponse("/docs")

    @app.get("/v2/health/ready", tags=["health"])
    @app.get("/v2/health/live", tags=["health"])
    def health():
        return {"status": "OK"}

    @app.get("/v2", tags=["metadata"])
    def server_info():
        return "This is the sparsecore server. Hello!"

    @app.get("/config", tags=["metadata"])
    def show_config():
        return {k: v for k, v in asdict(config).items() if k != "notes"}

    @app.get("/v2/models", tags=["metadata"])
    def list_models():
        return {"models": [_describe(e, pipelines[e.name], config) for e in config.endpoints]}

    @app.get("/metrics", include_in_schema=False)
    def prometheus():
        for name, batcher in batchers.items():
            metrics["queue"].labels(name).set(batcher.depth)
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    for endpoint in config.endpoints:
        _add_endpoint(app, endpoint, pipelines[endpoint.name], batchers[endpoint.name], metrics, config)
    return app


def _describe(e: Endpoint, pipeline, config: ServerConfig) -> dict:
    return {"name": e.name, "infer": f"/v2/models{e.path}/infer", "task": e.task, "engine": e.engine,
            "model_path": str(pipeline.deployment.folder), "batch_size": e.batch_size,
            "max_batch_size": e.max_batch_size or e.batch_size, "max_delay_ms": e.max_delay_ms,
            "streams": config.num_workers, "sequence_lengths": pipeline.buckets,
            "labels": [pipeline.deployment.id2label[k] for k in sorted(pipeline.deployment.id2label)]}


def _runner(pipeline):
    def run(items: list) -> list:
        return pipeline(items)
    return run


def _add_endpoint(app: FastAPI, e: Endpoint, pipeline, batcher: MicroBatcher, metrics: dict,
                  config: ServerConfig) -> None:
    pairs = pipeline.deployment.text_pairs

    async def infer(request: Request):
        start = time.perf_counter()
        in_flight = metrics["in_flight"].labels(e.name)
        in_flight.inc()
        try:
            items = parse_sequences(await request.body(), pairs)
            results = await batcher.submit(items)
            code, body = 200, {"labels": [r["label"] for r in results], "scores": [r["score"] for r in results]}
        except BadRequest as exc:
            code, body = exc.status, {"error": str(exc)}
        except SparsecoreError as exc:
            code, body = 422, {"error": str(exc)}
        except Exception as exc:  # the engine failed: the server keeps serving
            code, body = 500, {"error": f"inference failed ({type(exc).__name__}: {exc})"}
        finally:
            in_flight.dec()
        metrics["requests"].labels(e.name, str(code)).inc()
        if code >= 400:
            metrics["errors"].labels(e.name, str(code)).inc()
        metrics["latency"].labels(e.name).observe(time.perf_counter() - start)
        return JSONResponse(body, status_code=code)

    app.add_api_route(f"/v2/models{e.path}/infer", infer, methods=["POST"], tags=["inference"],
                      summary=f"Classify text with {e.name}",
                      openapi_extra={"requestBody": {"content": {"application/json": {"example": {
                          "sequences": [["text a", "text b"]] if pairs else ["a gripping, beautifully acted film"]}}},
                          "required": True}})
    app.add_api_route(f"/v2/models{e.path}", lambda: {"model_path": str(pipeline.deployment.folder)},
                      methods=["GET"], tags=["metadata"], name=f"{e.name} metadata")
    app.add_api_route(f"/v2/models{e.path}/ready", lambda: {"status": "OK"}, methods=["GET"], tags=["health"],
                      name=f"{e.name} ready")
