"""Schemathesis against a real ``parsec serve``, as the review ran it: ``st run`` on the
server's own ``/openapi.json``, every operation, a bounded number of generated requests
each (coverage and fuzzing phases), once with a scoped management token and once with
none.

What must hold for every request it sends:

* no 5xx (``not_a_server_error``);
* the status code, Content-Type, headers and body of every response are the ones the
  document declares for that operation (``status_code_conformance``,
  ``content_type_conformance``, ``response_headers_conformance``,
  ``response_schema_conformance``);
* a request the document says is invalid is refused with a 4xx
  (``negative_data_rejection``), and a call without valid credentials is refused
  (``ignored_auth``).

Two checks are left out, each because the document could not say what it would need:

* ``unsupported_method`` expects 405 for a method the document does not list; Twirp
  answers every non-POST request ``404 bad_route`` (parsec.api.management), and
  clients rely on that code;
* ``positive_data_acceptance`` expects every request the document allows to succeed, but
  some rules hang on the server's state and configuration, not on the request's shape: a
  sink that is configured, ``data`` that is base64 of JSON, a TTL under the configured
  maximum, a key or dead letter that exists.

After each run the server must still answer normal authenticated calls, and its output
must hold no traceback (an exception that never became a 500 would show there).

The run uses ``st``, Schemathesis's command line, rather than its pytest plugin: the
command line is the interface the review used, its report shows a ``curl`` line for every
failure, and the plugin's way to test a server started by a fixture
(``schemathesis.pytest.from_fixture``) fails on pytest 9.2, which no longer has the
``Item._nodeid`` it sets (the plugin is disabled in pyproject.toml). Every request and
response is kept in a HAR file that the no-token test reads to check each status. The
seed is random (like every Hypothesis test here) and printed in the report; ``st run
--seed N`` with the same flags replays a failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from background import Serve, parsec_env

from parsec.api.management import PREFIX, PUBLIC_METHODS

ST: Final = Path(sys.executable).with_name("st")
"""Schemathesis's command line in the venv running the tests."""

MAX_EXAMPLES: Final = 30
"""Generated requests per operation in the fuzzing phase (the coverage phase adds its
own, a fixed set per operation)."""

RUN_TIMEOUT: Final = 240.0
"""The longest one ``st run`` may take; it takes 10 to 20 s on a free 2-core machine."""

CHECKS: Final = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "ignored_auth",
    ]
)

SCOPED_SCOPES: Final = [{"pattern": "public:**", "verbs": ["manage", "publish"]}]
"""The scoped token's scopes: manage and publish on every public channel, and nothing on
private ones. ``manage`` on ``private:**`` is what makes a token an operator
(parsec.auth.scopes.is_operator), so this one is not: RevokeToken, RevokeUser,
RetireKey, PromoteKey, IssueMgmt and the dead-letter methods all answer it 403 after
its request has been parsed and validated. The run can thus neither revoke the operator
(or its own token), nor retire or replace the signing key, nor mint a token wider than
its own, whatever it generates, while the channel methods do real work on public
channels."""

pytestmark = pytest.mark.timeout(RUN_TIMEOUT + 60)


@dataclass(frozen=True)
class Server:
    """A ``parsec serve`` process, its operator token and a scoped token."""

    serve: Serve
    operator_token: str
    scoped_token: str

    @property
    def url(self) -> str:
        return self.serve.url

    def call(self, method: str, token: str | None, body: object = None) -> httpx.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.post(
            self.url + PREFIX + method,
            json={} if body is None else body,
            headers=headers,
            timeout=10,
            trust_env=False,
        )

    def assert_still_serves(self) -> None:
        """Both tokens still work, for what each may do, and the output is clean."""
        opened = self.call("OpenPublic", self.scoped_token, {"name": "public:st.after"})
        assert opened.status_code == 200, opened.text
        listed = self.call("ListChannels", self.scoped_token)
        assert listed.status_code == 200, listed.text
        assert "public:st.after" in [c["name"] for c in listed.json()["channels"]]
        keys = self.call("ListKeys", self.operator_token)
        assert keys.status_code == 200, keys.text
        output = "\n".join(self.serve.output)
        assert "Traceback" not in output, output


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """``parsec serve`` with its defaults (memory broker, a keyring in its state dir) on a
    free port, and a scoped management token minted by IssueMgmt with the operator's."""
    serve = Serve(cwd=tmp_path)
    try:
        operator = (tmp_path / ".parsec" / "operator.token").read_text().strip()
        issued = httpx.post(
            serve.url + PREFIX + "IssueMgmt",
            json={"subject": "schemathesis", "scopes": SCOPED_SCOPES},
            headers={"Authorization": f"Bearer {operator}"},
            timeout=10,
            trust_env=False,
        )
        assert issued.status_code == 200, issued.text
        yield Server(serve, operator, issued.json()["mgmt_token"])
    finally:
        serve.stop()


@dataclass(frozen=True)
class Run:
    """One ``st run``: its exit code, its report and every exchange it made."""

    returncode: int
    report: str
    entries: list[dict[str, Any]]

    def statuses(self) -> Counter[tuple[str, str, int]]:
        """How many times each (HTTP method, path, status) was seen."""
        return Counter(
            (
                entry["request"]["method"],
                httpx.URL(entry["request"]["url"]).path,
                entry["response"]["status"],
            )
            for entry in self.entries
        )


def schemathesis_run(server: Server, workdir: Path, *args: str) -> Run:
    """``st run`` on ``server``'s ``/openapi.json`` with the checks above; ``args`` are
    extra flags."""
    har = workdir / "run.har"
    argv = [
        str(ST),
        "--no-color",
        "run",
        f"{server.url}/openapi.json",
        *("--checks", CHECKS),
        *("--max-examples", str(MAX_EXAMPLES)),
        *("--workers", "1"),
        *("--request-timeout", "10"),
        *("--report", "har", "--report-har-path", str(har)),
        *args,
    ]
    done = subprocess.run(
        argv,
        cwd=workdir,  # no schemathesis.toml of anybody's is found from there
        env=parsec_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    report = done.stdout + done.stderr
    entries = json.loads(har.read_text())["log"]["entries"] if har.exists() else []
    return Run(done.returncode, report, entries)


def test_every_operation_with_a_scoped_token(server: Server, tmp_path: Path) -> None:
    """Every operation, called with the scoped token (see SCOPED_SCOPES): no 5xx, every
    response as documented, and the server serves as before afterwards."""
    run = schemathesis_run(
        server, tmp_path, "--header", f"Authorization: Bearer {server.scoped_token}"
    )
    assert run.returncode == 0, run.report
    statuses = run.statuses()
    # The run did real work, not only validation errors: channels were opened.
    assert statuses["POST", PREFIX + "OpenPublic", 200] > 0, run.report
    server.assert_still_serves()


def test_every_operation_without_a_token(server: Server, tmp_path: Path) -> None:
    """Every operation, called with no token: each protected method answers 401 whatever
    the request (the bearer is checked before the body is read), the public ones answer
    as documented, nothing answers 5xx, and the server serves as before afterwards."""
    run = schemathesis_run(server, tmp_path)
    assert run.returncode == 0, run.report
    posts = Counter({key: count for key, count in run.statuses().items() if key[0] == "POST"})
    assert posts["POST", PREFIX + "Manifest", 200] > 0, run.report
    for (_, path, status), _count in posts.items():
        method = path.removeprefix(PREFIX)
        if path.startswith(PREFIX) and method not in PUBLIC_METHODS:
            assert status == 401, (path, status, run.report)
    server.assert_still_serves()
