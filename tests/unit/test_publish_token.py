"""``parsec publish`` with a management token (ParsecService ``Publish``) or an API key
(the server API), against real ``parsec serve`` processes and a real ``parsec subscribe``."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from background import PARSEC, Background, Serve, parsec_env

RUN_TIMEOUT = 30.0

NO_HISTORY = """
[[namespaces]]
name = "public"
allow_subscribe_for_client = true
"""
"""Built-in ``public`` channels without history (the entry replaces their options)."""

NEWS = "public:demo.news"


def parsec(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The venv's ``parsec ARGS`` to completion, with only the PARSEC_* given here."""
    return subprocess.run(
        [str(PARSEC), *args],
        cwd=cwd,
        env=parsec_env(env),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def serve(tmp_path: Path, *args: str, config: str = "") -> Iterator[Serve]:
    """A ``parsec serve`` in ``tmp_path`` with ``config`` and ``public:demo.news`` open."""
    (tmp_path / "parsec.toml").write_text(config)
    server = Serve("--config", "parsec.toml", *args, cwd=tmp_path)
    try:
        opened = parsec(
            "channels",
            "open",
            NEWS,
            cwd=tmp_path,
            PARSEC_SERVER=server.url,
            PARSEC_TOKEN=operator_token(tmp_path),
        )
        assert opened.returncode == 0, opened.stderr
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Serve]:
    """A ``parsec serve`` without an API key (its server API is off)."""
    yield from serve(tmp_path)


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[Serve]:
    """A ``parsec serve`` with API key ``secret``."""
    yield from serve(tmp_path, "--api-key", "secret")


def operator_token(cwd: Path) -> str:
    return (cwd / ".parsec" / "operator.token").read_text().strip()


def test_publish_with_the_operator_token_reaches_a_subscriber(
    server: Serve, tmp_path: Path
) -> None:
    """With PARSEC_TOKEN and no API key, the publication goes through ParsecService; it
    prints where it landed, and a running `parsec subscribe` prints the same."""
    subscriber = Background(
        [str(PARSEC), "subscribe", NEWS, "--server", server.url], cwd=tmp_path, env=parsec_env()
    )
    try:
        subscriber.wait_for(f"subscribed to {NEWS}")
        published = parsec(
            "publish",
            NEWS,
            "--data",
            '{"text":"hi"}',
            cwd=tmp_path,
            PARSEC_SERVER=server.url,
            PARSEC_TOKEN=operator_token(tmp_path),
        )
        received = subscriber.wait_for('"text":"hi"')
    finally:
        subscriber.stop()
    assert published.returncode == 0, published.stderr
    position = json.loads(published.stdout)
    assert position["offset"] == 1
    assert json.loads(received) == {
        "channel": NEWS,
        "offset": 1,
        "epoch": position["epoch"],
        "data": {"text": "hi"},
    }


def test_publish_with_a_token_into_a_channel_without_history_prints_an_empty_object(
    tmp_path: Path,
) -> None:
    """Without history there is no position: `{}`, as the server API answers."""
    for server in serve(tmp_path, config=NO_HISTORY):
        result = parsec(
            "publish",
            NEWS,
            "--token",
            operator_token(tmp_path),
            "--server",
            server.url,
            "--data",
            "[1, 2]",
            cwd=tmp_path,
        )
        assert (result.returncode, result.stdout) == (0, "{}\n"), result.stderr


def test_publish_with_a_token_that_may_not_publish_there_exits_1(
    server: Serve, tmp_path: Path
) -> None:
    """A management token whose scopes do not grant publish on the channel is refused
    with its PARSEC code."""
    minted = parsec(
        "tokens",
        "mgmt",
        "--state-dir",
        ".parsec",
        "--subject",
        "team",
        "--scope",
        "public:demo.other",
        "--verb",
        "publish",
        cwd=tmp_path,
    )
    assert minted.returncode == 0, minted.stderr
    result = parsec(
        "publish",
        NEWS,
        "--data",
        "{}",
        cwd=tmp_path,
        PARSEC_SERVER=server.url,
        PARSEC_TOKEN=minted.stdout.strip(),
    )
    assert result.returncode == 1
    assert result.stderr.startswith("parsec: error: PARSEC_AUTH_DENIED: "), result.stderr


def test_a_token_does_not_publish_into_an_operator_namespace(tmp_path: Path) -> None:
    """ParsecService publishes into public: and private: channels only: for any other
    channel the command says to use the API key, before sending anything."""
    result = parsec(
        "publish",
        "chat:room",
        "--token",
        "any",
        "--server",
        "http://127.0.0.1:9",
        "--data",
        "{}",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "parsec: error: chat:room is not a public: or private: channel, the only ones a "
        "management token publishes into; publish through the server API with --api-key\n"
    )


def test_an_api_key_takes_precedence_over_the_token(keyed: Serve, tmp_path: Path) -> None:
    """With both, the server API is used: a right key publishes whatever the token, and a
    wrong key fails even with a valid token."""
    with_key = parsec(
        "publish",
        NEWS,
        "--api-key",
        "secret",
        "--data",
        "{}",
        cwd=tmp_path,
        PARSEC_SERVER=keyed.url,
        PARSEC_TOKEN="not-a-token",
    )
    assert with_key.returncode == 0, with_key.stderr
    assert json.loads(with_key.stdout)["offset"] == 1

    wrong_key = parsec(
        "publish",
        NEWS,
        "--data",
        "{}",
        cwd=tmp_path,
        PARSEC_SERVER=keyed.url,
        PARSEC_API_KEY="wrong",
        PARSEC_TOKEN=operator_token(tmp_path),
    )
    assert wrong_key.returncode == 1
    assert "the server rejected the API key" in wrong_key.stderr


def test_publish_with_neither_says_how_to_authenticate(keyed: Serve, tmp_path: Path) -> None:
    """Without a key or a token the server API refuses, and the error names both ways."""
    result = parsec("publish", NEWS, "--data", "{}", "--server", keyed.url, cwd=tmp_path)
    assert result.returncode == 1
    assert "--api-key" in result.stderr
    assert "--token" in result.stderr
