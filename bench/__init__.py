"""Parsec's benchmark harness: Parsec and its peers measured side by side in one run.

``python -m bench all`` runs every workload against every server; ``python -m bench run
fanout --server parsec`` runs one; ``python -m bench smoke`` runs all with tiny
parameters. See ``bench/README.md``.
"""
