"""``python -m bench``: run workloads against Parsec and its peers and write a report.

    python -m bench all                     every workload, every server (< 10 min)
    python -m bench smoke                   every workload, every server, tiny parameters
    python -m bench run fanout [--server parsec ...]
    python -m bench list                    workloads and servers

Each run writes ``results.json``, ``report.md`` and PNG charts to
``bench/results/<timestamp>/`` (or ``--out DIR``) and prints that directory. Exit
status: 0 when the run completed (a failed pair is recorded in the results, not an
exit status), 2 for bad arguments or a bad workload file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import msgspec

from bench import machine, report
from bench.plan import PlanError, Workload, load_workload, workload_names
from bench.runner import run_workloads
from bench.servers import SERVERS

RESULTS_DIR = Path(__file__).with_name("results")
EXIT_USAGE = 2
QUIET_WAIT_S = 60.0
ATTEMPTS = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("all", "every workload against every server"),
        ("smoke", "every workload against every server with tiny parameters"),
    ):
        cmd = sub.add_parser(name, help=text)
        _common_options(cmd)
    run = sub.add_parser("run", help="one or more workloads")
    run.add_argument("workloads", nargs="+", metavar="WORKLOAD")
    run.add_argument(
        "--server", action="append", dest="servers", metavar="NAME", help="repeatable; default all"
    )
    run.add_argument("--smoke", action="store_true", help="use the [smoke] parameters")
    _common_options(run)
    sub.add_parser("list", help="workloads and servers")
    return parser


def _common_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--out", type=Path, help="results directory (default bench/results/<ts>)")
    cmd.add_argument(
        "--quiet-wait",
        type=float,
        default=None,
        metavar="SECONDS",
        help="before each measurement, wait up to this long for other processes to leave "
        f"the CPU idle (default {QUIET_WAIT_S:g} s; 0 with the smoke parameters)",
    )
    cmd.add_argument(
        "--attempts",
        type=int,
        default=None,
        metavar="N",
        help="measure a pair up to N times while other processes disturb it, keeping the "
        f"least disturbed (default {ATTEMPTS}; 1 with the smoke parameters)",
    )
    cmd.add_argument(
        "--redis-url",
        metavar="URL",
        help="the Redis that workloads with a [cluster] table run their servers over "
        "(default: the workload file's redis_url)",
    )


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        for name in workload_names():
            workload = load_workload(name)
            state = "" if workload.available else f"  [{workload.reason}]"
            print(f"{name}: {' '.join(workload.description.split())}{state}")
        print("servers:", ", ".join(SERVERS))
        return 0
    names = workload_names() if args.command in ("all", "smoke") else args.workloads
    servers = getattr(args, "servers", None) or list(SERVERS)
    unknown = [s for s in servers if s not in SERVERS]
    if unknown:
        print(
            f"bench: unknown server {unknown[0]!r} (known: {', '.join(SERVERS)})", file=sys.stderr
        )
        return EXIT_USAGE
    try:
        workloads = [load_workload(name) for name in names]
    except PlanError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.redis_url is not None:
        workloads = [_with_redis(w, args.redis_url) for w in workloads]
    smoke = args.command == "smoke" or getattr(args, "smoke", False)
    quiet_wait = args.quiet_wait if args.quiet_wait is not None else (0 if smoke else QUIET_WAIT_S)
    attempts = args.attempts if args.attempts is not None else (1 if smoke else ATTEMPTS)
    if quiet_wait < 0:
        print("bench: --quiet-wait must be 0 or more seconds", file=sys.stderr)
        return EXIT_USAGE
    if attempts < 1:
        print("bench: --attempts must be 1 or more", file=sys.stderr)
        return EXIT_USAGE
    out = _run(
        workloads,
        servers,
        smoke=smoke,
        quiet_wait=quiet_wait,
        attempts=attempts,
        out=args.out,
        argv=argv,
    )
    print(out)
    return 0


def _with_redis(workload: Workload, url: str) -> Workload:
    if workload.cluster is None:
        return workload
    return msgspec.structs.replace(
        workload, cluster=msgspec.structs.replace(workload.cluster, redis_url=url)
    )


def _run(
    workloads: list[Workload],
    servers: list[str],
    *,
    smoke: bool,
    quiet_wait: float,
    attempts: int,
    out: Path | None,
    argv: list[str],
) -> Path:
    started = dt.datetime.now(dt.UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ") + ("-smoke" if smoke else "")
    out = out if out is not None else RESULTS_DIR / stamp
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "meta": {
            "started": started.isoformat(timespec="seconds"),
            "command": shlex.join(["python", "-m", "bench", *argv]),
            "smoke": smoke,
            "servers": servers,
            "machine": machine.describe(),
        },
    }
    results["workloads"] = run_workloads(
        workloads, servers, smoke=smoke, quiet_wait_s=quiet_wait, attempts=attempts
    )
    finished = dt.datetime.now(dt.UTC)
    results["meta"]["finished"] = finished.isoformat(timespec="seconds")
    results["meta"]["seconds"] = round((finished - started).total_seconds(), 1)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    report.write_markdown(results, out / "report.md")
    report.write_charts(results, out)
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
