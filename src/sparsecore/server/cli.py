"""``sparsecore.server``: serve deployments over HTTP, started as ``deepsparse.server`` was.

    sparsecore.server --task text-classification --model_path DIR [--engine sparsecore|onnxruntime|deepsparse]
        [--batch_size N] [--max_batch_size N] [--max_delay_ms MS] [--num_workers N] [--num_cores N]
        [--sequence_length N ...] [--name NAME] [--host 127.0.0.1] [--port 5543]
    sparsecore.server --config_file server.yaml        # a DeepSparse server config

``--num_workers`` (DeepSparse's name; also ``--num_streams``) is how many batches of an endpoint run at once.
Requests arriving within ``--max_delay_ms`` of each other are answered from one Pipeline call of up to
``--max_batch_size`` texts (default: ``--batch_size``). The endpoint answers at ``/v2/models/<name>/infer``
(``<name>``: ``--name``, default the task). SIGTERM or Ctrl-C stops accepting connections, answers the
requests in flight, then exits. Listens on 127.0.0.1 unless ``--host`` says otherwise (``0.0.0.0``: every
interface).
"""

from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path

from sparsecore.cli.parser import OneLineArgumentParser, user_errors
from sparsecore.deploy.engines import bind_to_cores
from sparsecore.errors import SparsecoreError
from sparsecore.server.config import ENGINES, ServerConfig, check_routes, endpoint_from_dict, from_file


def build_parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog="sparsecore.server", description=__doc__)
    p.add_argument("model", nargs="?", default=None, help="the deployment (same as --model_path)")
    p.add_argument("--model_path", default=None)
    p.add_argument("--task", default=None, help="text-classification (or sentiment-analysis)")
    p.add_argument("--engine", default="sparsecore", choices=ENGINES)
    p.add_argument("--batch_size", type=int, default=1)
    p.add_argument("--max_batch_size", type=int, default=None)
    p.add_argument("--max_delay_ms", type=float, default=5.0)
    p.add_argument("--num_workers", "--num-workers", "--num_streams", dest="num_workers", type=int, default=1)
    p.add_argument("--num_cores", "--num-cores", dest="num_cores", type=int, default=None)
    p.add_argument("--sequence_length", type=int, nargs="+", default=None)
    p.add_argument("--name", default=None, help="the endpoint's name in /v2/models/<name>/infer (default: the task)")
    p.add_argument("--host", default=None, help="default 127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="default 5543")
    p.add_argument("--config_file", type=Path, default=None, help="a DeepSparse server config (YAML)")
    p.add_argument("--log_level", "--log-level", dest="log_level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"])
    return p


def config_from_args(args) -> ServerConfig:
    """The :class:`ServerConfig` the flags (or ``--config_file``) describe."""
    if args.config_file is not None:
        if args.model or args.model_path or args.task:
            raise SparsecoreError("--config_file and --task/--model_path both given", "sparsecore.server",
                                  "describe the endpoints in the config file, or drop --config_file")
        config = from_file(args.config_file)
    else:
        model = args.model_path or args.model
        if not model or not args.task:
            raise SparsecoreError("no model to serve", "sparsecore.server",
                                  "pass --task text-classification --model_path DIR, or --config_file server.yaml")
        raw = {"task": args.task, "model": model, "engine": args.engine, "batch_size": args.batch_size,
               "max_delay_ms": args.max_delay_ms, "name": args.name or args.task}
        if args.max_batch_size is not None:
            raw["max_batch_size"] = args.max_batch_size
        if args.sequence_length:
            raw["bucketing"] = {"sequence_lengths": args.sequence_length}
        config = ServerConfig([endpoint_from_dict(raw, 0, "command line")], num_cores=args.num_cores,
                              num_workers=args.num_workers)
        if config.num_workers < 1:
            raise SparsecoreError(f"--num_workers is {config.num_workers}", "sparsecore.server", "use 1 or more")
    config.host = args.host or config.host
    config.port = args.port or config.port
    check_routes(config)
    return config


def load_pipelines(config: ServerConfig) -> dict[str, object]:
    from sparsecore.deploy import Pipeline

    pipelines = {}
    for e in config.endpoints:
        pipelines[e.name] = Pipeline.create(task=e.task.replace("_", "-"), model_path=e.model, engine=e.engine,
                                            batch_size=e.batch_size, sequence_length=e.sequence_lengths,
                                            num_streams=config.num_workers, num_cores=config.num_cores)
        text = "warm-up"  # one inference before the server reports ready: the engine's kernels compiled or loaded
        pipelines[e.name]([[text, text]] if pipelines[e.name].deployment.text_pairs else [text])
    return pipelines


def _check_port(host: str, port: int) -> None:
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise SparsecoreError(f"cannot listen on {host}:{port} ({exc.strerror})", "sparsecore.server",
                              "pick another --port (or stop what holds this one)") from None


def _pin(config: ServerConfig) -> None:
    if config.engine_thread_pinning != "none":
        bind_to_cores(config.num_cores)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with user_errors():
        try:
            import fastapi  # noqa: F401
            import prometheus_client  # noqa: F401
            import uvicorn
        except ImportError as exc:
            raise SparsecoreError(f"the server needs {exc.name}, which is not installed", "sparsecore.server",
                                  'pip install "sparsecore[server]"') from None
        config = config_from_args(args)
        _check_port(config.host, config.port)
        _pin(config)
        pipelines = load_pipelines(config)
        from sparsecore.server.app import build_app

        app = build_app(config, pipelines)
    for note in config.notes:
        sys.stderr.write(f"note: {note}\n")
    for e in config.endpoints:
        sys.stderr.write(f"sparsecore.server: {e.name} ({e.engine}, batch {e.batch_size}, up to "
                         f"{e.max_batch_size or e.batch_size} per call, {config.num_workers} stream(s)) at "
                         f"http://{config.host}:{config.port}/v2/models{e.path}/infer\n")
    sys.stderr.write(f"sparsecore.server: API docs at http://{config.host}:{config.port}/docs\n")
    for sig in (signal.SIGTERM, signal.SIGINT):  # uvicorn's handlers drain and stop the server, then re-raise the
        signal.signal(sig, lambda *_: None)  # signal to the handler found before them: this one, so the exit is 0
    uvicorn.run(app, host=config.host, port=config.port, log_level=args.log_level, timeout_graceful_shutdown=60)


if __name__ == "__main__":
    main()
