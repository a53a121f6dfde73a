"""``sparsecore.server``: an HTTP server for deployments, with DeepSparse server's routes and config files.

:mod:`.config` reads the command line or a DeepSparse server YAML; :mod:`.batching` gathers concurrent
requests into batches; :mod:`.app` builds the FastAPI application (routes, Prometheus metrics); :mod:`.cli`
runs it under uvicorn. Needs the ``server`` extra (``pip install "sparsecore[server]"``).
"""
