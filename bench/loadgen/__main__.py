"""``python -m bench.loadgen SPEC.json RESULT.json``: run one workload against one
server (both described in SPEC) on uvloop and write the Result.

Exit status: 0 with RESULT written; 2 for a bad spec or bad parameters (the message
names the field); 1 when the workload itself failed (the message says why).
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec
import uvloop

from bench.loadgen.pool import raise_nofile_limit
from bench.loadgen.spec import Result, Spec
from bench.loadgen.workloads import WORKLOADS

USAGE = "usage: python -m bench.loadgen SPEC.json RESULT.json"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        spec = msgspec.json.decode(Path(argv[0]).read_bytes(), type=Spec)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        print(f"loadgen: bad spec {argv[0]}: {exc}", file=sys.stderr)
        return 2
    workload = WORKLOADS.get(spec.workload)
    if workload is None:
        print(f"loadgen: unknown workload {spec.workload!r}", file=sys.stderr)
        return 2
    raise_nofile_limit()
    try:
        result: Result = uvloop.run(workload(spec.target, spec.params))
    except msgspec.ValidationError as exc:
        print(f"loadgen: bad params for {spec.workload}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the process boundary: report any failure as a line
        print(f"loadgen: {spec.workload} failed: {exc!r}", file=sys.stderr)
        return 1
    Path(argv[1]).write_bytes(msgspec.json.encode(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
