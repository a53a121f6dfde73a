"""Server settings from the command line or a DeepSparse server config file, checked before anything loads.

A DeepSparse config (``num_cores``, ``num_workers``, ``engine_thread_pinning``, ``endpoints`` with ``name``,
``route``, ``task``, ``model``, ``batch_size``, ``bucketing.sequence_lengths``, ``kwargs``) runs as it did
there; our additions per endpoint are ``engine``, ``max_batch_size`` and ``max_delay_ms``. Keys neither knows,
and DeepSparse keys with nothing to do here (``loggers``, ``data_logging``, ``middlewares``, …), are one
:class:`SparsecoreError` naming them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sparsecore.errors import SparsecoreError

ENGINES = ("sparsecore", "onnxruntime", "deepsparse")
TASKS = {"text-classification", "text_classification", "sentiment-analysis", "sentiment_analysis", "glue"}
TOP_KEYS = {"num_cores", "num_workers", "engine_thread_pinning", "pytorch_num_threads", "integration", "endpoints",
            "host", "port"}
ENDPOINT_KEYS = {"name", "route", "task", "model", "batch_size", "bucketing", "kwargs", "engine", "max_batch_size",
                 "max_delay_ms"}
KWARGS = {"engine_type", "sequence_length"}
UNSUPPORTED = {"loggers", "system_logging", "data_logging", "logging_config", "middlewares", "image_sizes"}


@dataclass
class Endpoint:
    """One served model: ``/v2/models/<name or route>/infer``."""

    name: str
    model: str
    task: str = "text-classification"
    route: str | None = None
    engine: str = "sparsecore"
    batch_size: int = 1
    sequence_lengths: list[int] | None = None
    max_batch_size: int | None = None  # items gathered into one Pipeline call (default: batch_size)
    max_delay_ms: float = 5.0  # how long the first waiting request waits for others

    @property
    def path(self) -> str:
        """The endpoint's path under ``/v2/models``: its route, else ``/<name>``."""
        return self.route if self.route else f"/{self.name}"


@dataclass
class ServerConfig:
    endpoints: list[Endpoint]
    num_cores: int | None = None
    num_workers: int = 1  # streams per endpoint
    engine_thread_pinning: str = "core"
    host: str = "127.0.0.1"
    port: int = 5543
    source: str = "command line"
    notes: list[str] = field(default_factory=list)


def _fail(what: str, where: str, fix: str):
    raise SparsecoreError(what, where, fix)


def _int(value, name: str, where: str, low: int = 1, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        _fail(f"{name} is {value!r}", where, f"use an integer >= {low}")
    return value


def _route(route, where: str) -> str | None:
    if route is None:
        return None
    if not isinstance(route, str) or not route.strip("/") or any(c.isspace() for c in route):
        _fail(f"route is {route!r}", where, "use a path such as /predict")
    return "/" + route.strip("/")


def _check_keys(raw: dict, allowed: set[str], where: str) -> None:
    """One error naming the keys outside ``allowed`` (DeepSparse features with nothing to do here said so)."""
    unknown = sorted(set(raw) - allowed)
    if unknown:
        kind = "not supported by sparsecore.server" if set(unknown) <= UNSUPPORTED else "unknown"
        _fail(f"{kind} key(s) {', '.join(unknown)}", where, f"use only {', '.join(sorted(allowed))}")


def endpoint_from_dict(raw, index: int, where: str) -> Endpoint:
    """An :class:`Endpoint` from one entry of a config's ``endpoints`` list."""
    here = f"{where}: endpoints[{index}]"
    if not isinstance(raw, dict):
        _fail("an endpoint is not a mapping", here, "give task, model and optionally name, route, batch_size")
    _check_keys(raw, ENDPOINT_KEYS, here)
    for key in ("task", "model"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            _fail(f"{key} is missing or not a string", here, f"add {key}: ...")
    if raw["task"] not in TASKS:
        _fail(f"task {raw['task']!r} is not served here", here, "use text-classification (or sentiment-analysis)")
    kwargs = raw.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        _fail(f"kwargs is {kwargs!r}", here, "give a mapping, e.g. kwargs: {engine_type: onnxruntime}")
    if set(kwargs) - KWARGS:
        _fail(f"kwargs key(s) {', '.join(sorted(set(kwargs) - KWARGS))} not supported", here,
              f"use only {', '.join(sorted(KWARGS))}")
    engine = raw.get("engine", kwargs.get("engine_type", "sparsecore"))
    if engine not in ENGINES:
        _fail(f"engine {engine!r} is unknown", here, f"use one of {', '.join(ENGINES)}")
    lengths = None
    bucketing = raw.get("bucketing")
    if bucketing is not None:
        if not isinstance(bucketing, dict) or set(bucketing) != {"sequence_lengths"}:
            _fail("bucketing must hold sequence_lengths only", here, "bucketing: {sequence_lengths: [32, 64, 128]}")
        lengths = bucketing["sequence_lengths"]
    if "sequence_length" in kwargs:
        lengths = kwargs["sequence_length"]
    if lengths is not None:
        lengths = [lengths] if isinstance(lengths, int) else lengths
        if not isinstance(lengths, list) or not lengths or not all(isinstance(n, int) and n > 0 for n in lengths):
            _fail(f"sequence lengths {lengths!r}", here, "give positive integers, e.g. [32, 64, 128]")
    batch = _int(raw.get("batch_size", 1), "batch_size", here)
    delay = raw.get("max_delay_ms", 5.0)
    if not isinstance(delay, (int, float)) or isinstance(delay, bool) or not 0 <= delay <= 10_000:
        _fail(f"max_delay_ms is {delay!r}", here, "use milliseconds from 0 to 10000")
    name = raw.get("name") or f"endpoint-{index}"
    if not isinstance(name, str) or "/" in name:
        _fail(f"name is {name!r}", here, "use a name without /")
    return Endpoint(name=name, model=raw["model"], task=raw["task"], route=_route(raw.get("route"), here),
                    engine=engine, batch_size=batch, sequence_lengths=lengths,
                    max_batch_size=_int(raw.get("max_batch_size"), "max_batch_size", here, allow_none=True),
                    max_delay_ms=float(delay))


def from_file(path: Path) -> ServerConfig:
    """A :class:`ServerConfig` from a DeepSparse-style YAML file."""
    import yaml

    where = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        _fail(f"cannot read the config file ({exc.strerror})", where, "check --config_file")
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        _fail(f"not valid YAML ({str(exc).splitlines()[0]})", where, "fix the file's syntax")
    if not isinstance(raw, dict):
        _fail("the config is not a mapping", where, "give num_cores, num_workers and endpoints")
    _check_keys(raw, TOP_KEYS, where)
    endpoints = raw.get("endpoints")
    if not isinstance(endpoints, list) or not endpoints:
        _fail("endpoints is missing or empty", where, "list at least one endpoint with task and model")
    config = ServerConfig([endpoint_from_dict(e, i, where) for i, e in enumerate(endpoints)],
                          num_cores=_int(raw.get("num_cores"), "num_cores", where, allow_none=True),
                          num_workers=_int(raw.get("num_workers") or 1, "num_workers", where),
                          engine_thread_pinning=raw.get("engine_thread_pinning", "core"),
                          host=raw.get("host", "127.0.0.1"), port=_int(raw.get("port", 5543), "port", where),
                          source=where)
    if config.engine_thread_pinning not in ("core", "numa", "none"):
        _fail(f"engine_thread_pinning is {config.engine_thread_pinning!r}", where, "use core, numa or none")
    if raw.get("integration", "local") not in ("local", "default", None):
        _fail(f"integration {raw['integration']!r} is not supported", where, "remove it (local serving only)")
    if "pytorch_num_threads" in raw:
        config.notes.append("pytorch_num_threads has no effect: the sparsecore runtime does not use torch")
    check_routes(config)
    return config


def check_routes(config: ServerConfig) -> None:
    """Every endpoint's path is distinct; several endpoints need routes or names to tell them apart."""
    seen: dict[str, str] = {}
    for e in config.endpoints:
        if e.path in seen:
            _fail(f"endpoints {seen[e.path]!r} and {e.name!r} both serve /v2/models{e.path}", config.source,
                  "give each endpoint its own name or route")
        seen[e.path] = e.name
    if not 1 <= config.port <= 65535:
        _fail(f"port is {config.port}", config.source, "use 1..65535")
