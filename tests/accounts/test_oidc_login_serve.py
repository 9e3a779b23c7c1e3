"""``parsec serve`` with ``[accounts.oidc]`` naming a provider it cannot discover: the
server does not start half-configured; one ``parsec: error:`` line names
``accounts.oidc.issuer`` and the problem, exit 2, never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cli_runs import Proc, assert_one_line_error
from oidc_provider import OIDCProvider

from parsec.testing import free_port

pytestmark = pytest.mark.usefixtures("hermetic")

CONFIG = """
[accounts]
session_key = "0123456789abcdef0123456789abcdef"
base_url = "http://127.0.0.1:8000"

[accounts.oidc]
issuer = "ISSUER"
client_id = "parsec-cli"
"""


@pytest.mark.parametrize(
    ("issuer", "overrides", "problem"),
    [
        pytest.param("{idp}-missing", {}, "HTTP 404", id="unknown-realm"),
        pytest.param("http://127.0.0.1:{port}/realms/x", {}, "ConnectError", id="provider-down"),
        pytest.param("{idp}", {"issuer": "https://other.example"}, "is not", id="other-issuer"),
        pytest.param(
            "{idp}", {"token_endpoint": None}, "no http(s) token_endpoint", id="no-token-endpoint"
        ),
    ],
)
def test_serve_with_an_undiscoverable_provider_exits_2(
    spawn: Callable[..., Proc],
    idp: OIDCProvider,
    tmp_path: Path,
    issuer: str,
    overrides: dict[str, object],
    problem: str,
) -> None:
    issuer = issuer.format(idp=idp.issuer, port=free_port())
    idp.discovery_overrides = overrides
    (tmp_path / "parsec.toml").write_text(CONFIG.replace("ISSUER", issuer))
    proc = spawn(
        "serve", "--config", "parsec.toml", "--addr", f"127.0.0.1:{free_port()}", cwd=tmp_path
    )
    code, stderr = proc.finish()
    assert code == 2, stderr
    assert_one_line_error(
        stderr, "accounts.oidc.issuer: the OpenID provider cannot be discovered", issuer, problem
    )
