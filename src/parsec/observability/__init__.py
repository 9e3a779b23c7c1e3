"""Observability: logs, the access log, traces and metrics (``[log]``, ``[observability]``).

Each concept is one module, loaded on demand (``parsec.observability.metrics`` imports
prometheus-client); importing this package imports nothing else. Nothing here is
imported by the engine (:mod:`parsec.engine`), which offers small hooks instead."""
