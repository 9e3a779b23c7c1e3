"""Observability: logs, the access log, traces and metrics (``[log]``, ``[observability]``).

Each concept is one module; nothing here is imported by the engine
(:mod:`parsec.engine`), which offers small hooks instead."""
