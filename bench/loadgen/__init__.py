"""The load generator: a separate process (uvloop + picows) that holds the connections,
publishes timestamped payloads and measures publish -> receive latency.

``python -m bench.loadgen SPEC.json RESULT.json`` runs one workload against one server
as the ``Spec`` says and writes a ``Result``.
"""
