"""``parsec serve``'s operator token and banner, on real ``parsec serve`` processes.

The token goes to ``<state dir>/operator.token`` (0600), never to the server's output
unless ``--print-token`` asks for it; the banner's commands work pasted as they are.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import httpx
import pytest
from background import PARSEC, Serve, parsec_env

from parsec.auth.keyring import KeyRing
from parsec.auth.parsec_tokens import ParsecTokens
from parsec.auth.tokens import TokenVerifier
from parsec.cli.serve import banner
from parsec.options import ApiOptions, AuthOptions, Options, ServerOptions

RUN_TIMEOUT = 30.0


def run(
    *argv: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A command to completion, its output captured, with no PARSEC_* from the test's
    environment."""
    return subprocess.run(
        argv,
        cwd=cwd,
        env=parsec_env(env),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_operator_token_is_in_a_private_file_and_not_in_the_output(tmp_path: Path) -> None:
    """The token file is 0600 and holds a working operator token; the server prints only
    its path, neither at start nor later."""
    serve = Serve(cwd=tmp_path)
    try:
        token_file = tmp_path / ".parsec" / "operator.token"
        assert mode(token_file) == 0o600
        token = token_file.read_text().strip()
        listed = run(
            str(PARSEC),
            "channels",
            "list",
            "--server",
            serve.url,
            cwd=tmp_path,
            env={"PARSEC_TOKEN": token},
        )
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout == "no channels\n"
        claims = ParsecTokens(KeyRing.open(tmp_path / ".parsec")).verify(token, "mgmt")
        assert (claims.sub, claims.exp - claims.iat) == ("operator", 86400)
    finally:
        serve.stop()
    output = "\n".join(serve.output)
    assert token not in output
    assert f"in {token_file}" in output


def test_each_start_replaces_the_token_file_with_a_private_one(tmp_path: Path) -> None:
    """A file left readable by others (or holding junk) is replaced by a 0600 file with a
    new token, on every start."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    token_file = state / "operator.token"
    token_file.write_text("junk\n")
    token_file.chmod(0o644)
    tokens = []
    for _ in range(2):
        serve = Serve("--state-dir", str(state), cwd=tmp_path)
        serve.stop()
        assert mode(token_file) == 0o600
        tokens.append(token_file.read_text().strip())
    assert "junk" not in tokens
    assert tokens[0] != tokens[1]
    assert [p.name for p in state.iterdir() if p.name.startswith(".")] == []  # no temp files


def test_print_token_prints_the_token_of_the_file(tmp_path: Path) -> None:
    """--print-token adds the token itself to the banner, as serve printed it before."""
    serve = Serve("--print-token", cwd=tmp_path)
    try:
        line = serve.wait_for("management token (operator, expires ")
    finally:
        serve.stop()
    token = (tmp_path / ".parsec" / "operator.token").read_text().strip()
    assert line.endswith(f"): {token}")


def test_an_unwritable_token_file_is_reported_and_the_server_still_serves(
    tmp_path: Path,
) -> None:
    """When the token file cannot be written the banner says why and leaves out the
    token's commands; the server serves all the same."""
    (tmp_path / ".parsec" / "operator.token").mkdir(parents=True)  # a directory in the way
    serve = Serve(cwd=tmp_path)
    try:
        lines = serve.banner()
        health = httpx.get(f"{serve.url}/healthz", timeout=RUN_TIMEOUT)
    finally:
        serve.stop()
    assert any(line.startswith("  no operator token: cannot write ") for line in lines), lines
    assert not any("PARSEC_TOKEN" in line for line in lines)
    assert (health.status_code, health.text) == (200, "ok")


def test_the_banner_commands_work_pasted_in_another_directory(tmp_path: Path) -> None:
    """The commands under "in another terminal:" run as printed from elsewhere: the
    management call succeeds with the token file, and the minted connection token is
    one the server's keyring verifies."""
    home = tmp_path / "my server"
    home.mkdir()
    (home / "parsec.toml").write_text('[auth]\nstate_dir = "keys here"\n')
    serve = Serve("--config", "parsec.toml", cwd=home)
    try:
        lines = serve.banner()
        commands = lines[lines.index("  in another terminal:") + 1 :]
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        script = "set -eu\n" + "\n".join(line.strip() for line in commands)
        pasted = run("bash", "-c", script, cwd=elsewhere, env={"PARSEC_SERVER": "http://0.0.0.0:1"})
    finally:
        serve.stop()
    assert pasted.returncode == 0, pasted.stderr
    no_channels, connection_token = pasted.stdout.splitlines()
    assert no_channels == "no channels"
    verifier = TokenVerifier(KeyRing.open(home / "keys here"))
    assert verifier.verify_connection(connection_token).user == "alice"
    assert f"{PARSEC} tokens connect --sub alice --config '{home}/parsec.toml'" in commands[-1]


def test_the_banner_names_this_server_and_its_files() -> None:
    """The banner's exact text for a server on all interfaces with an API key."""
    options = Options(
        server=ServerOptions(addr="0.0.0.0:9001"),
        auth=AuthOptions(state_dir=Path("/var/lib/my parsec")),
        api=ApiOptions(key="k"),
    )
    text = banner(
        options,
        command="/opt/parsec/bin/parsec",
        token_file=Path("/var/lib/my parsec/operator.token"),
        expires="2026-01-02T03:04:05Z",
    )
    assert text.splitlines() == [
        "parsec listening on http://0.0.0.0:9001 (websocket ws://0.0.0.0:9001/connection/websocket)",
        "  server API: POST /api/<method> with header X-API-Key",
        "  operator token (every permission, expires 2026-01-02T03:04:05Z) in "
        "/var/lib/my parsec/operator.token",
        "  in another terminal:",
        "    export PARSEC_SERVER=http://127.0.0.1:9001",
        "    export PARSEC_TOKEN=$(cat '/var/lib/my parsec/operator.token')",
        "    /opt/parsec/bin/parsec channels list",
        "    /opt/parsec/bin/parsec tokens connect --sub alice --state-dir '/var/lib/my parsec'",
    ]


@pytest.mark.parametrize(
    ("api", "words"),
    [(ApiOptions(), "disabled"), (ApiOptions(insecure=True), "WITHOUT a key")],
)
def test_the_banner_says_whether_the_api_is_open(api: ApiOptions, words: str) -> None:
    """The banner warns when /api is disabled or open without a key."""
    assert words in banner(Options(api=api))


def test_the_banner_uses_the_script_that_runs(tmp_path: Path) -> None:
    """The banner's commands start with the absolute path of the running parsec, also
    when it was started by a relative path."""
    serve = Serve(cwd=tmp_path, parsec=os.path.relpath(PARSEC, tmp_path))
    serve.stop()
    assert serve.argv[0] != str(PARSEC)
    assert serve.banner()[-1].startswith(f"    {PARSEC} tokens connect --sub alice")


def test_serve_help_names_every_broker_scheme(tmp_path: Path) -> None:
    """--broker's help names the memory, Redis and NATS URLs it takes."""
    shown = run(str(PARSEC), "serve", "--help", cwd=tmp_path)
    assert shown.returncode == 0
    words = " ".join(shown.stdout.split())
    broker = words[words.index("--broker URL") : words.index("--api-key")]
    for scheme in ("memory://", "redis://", "nats://"):
        assert scheme in broker
