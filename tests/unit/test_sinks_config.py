"""[sinks.<name>] and [sink_retry] in the TOML file: sinks built at load, errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from parsec.config import ConfigError, load_options
from parsec.options import Options
from parsec.sinks import EmailSink, RetryPolicy, SlackSink, WebhookSink
from parsec.sinks.config import build_retry, build_sinks

FULL = """
[sink_retry]
max_attempts = 4
base_backoff = "500ms"
max_backoff = "1m"
jitter = 0.1

[sinks.mail]
kind = "email"
host = "smtp.example.test"
port = 2525
from = "noreply@example.test"
username = "parsec"
password = "${SMTP_PASSWORD}"
starttls = true
timeout = "20s"

[sinks.mail.retry]
max_attempts = 2

[sinks.team]
kind = "slack"
webhook_url = "https://hooks.slack.test/services/${SLACK_PATH}"

[sinks.hook]
kind = "webhook"
url = "https://example.test/hook"
secret = "${HOOK_SECRET}"
headers = { Authorization = "Bearer ${HOOK_TOKEN}", X-Tenant = "acme" }
"""

ENV = {
    "SMTP_PASSWORD": "pw",
    "SLACK_PATH": "T/B/x",
    "HOOK_SECRET": "sec",
    "HOOK_TOKEN": "tok",
}


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Options:
    path = tmp_path / "parsec.toml"
    path.write_text(text)
    return load_options(path, env=env if env is not None else dict(ENV))


def error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, env)
    return caught.value


def test_no_sink_tables_means_no_sinks(tmp_path: Path) -> None:
    """Without [sinks] or [sink_retry], sinks are None and the default policy applies."""
    options = load(tmp_path, "")

    assert options.sinks is None
    assert options.sink_retry == RetryPolicy()
    assert options.sink_retry_overrides == {}
    assert options == Options()


def test_full_config_builds_every_kind(tmp_path: Path) -> None:
    """Each [sinks.<name>] table becomes a registered sink of its kind."""
    options = load(tmp_path, FULL)

    assert options.sinks is not None
    assert options.sinks.names() == ["hook", "mail", "team"]
    assert isinstance(options.sinks.get("mail"), EmailSink)
    assert isinstance(options.sinks.get("team"), SlackSink)
    assert isinstance(options.sinks.get("hook"), WebhookSink)
    assert repr(options.sinks.get("mail")) == (
        "EmailSink('mail', host='smtp.example.test', port=2525)"
    )


def test_retry_tables_set_the_default_and_per_sink_policies(tmp_path: Path) -> None:
    """[sink_retry] sets the default; [sinks.x.retry] overrides it key by key."""
    options = load(tmp_path, FULL)

    assert options.sink_retry == RetryPolicy(4, 0.5, 60.0, 0.1)
    assert options.sink_retry_overrides == {"mail": RetryPolicy(2, 0.5, 60.0, 0.1)}


def test_sink_retry_alone_sets_the_policy(tmp_path: Path) -> None:
    """[sink_retry] without sinks sets only the policy."""
    options = load(tmp_path, "[sink_retry]\nmax_attempts = 1\n")

    assert options.sinks is None
    assert options.sink_retry == RetryPolicy(max_attempts=1)


def test_env_references_in_every_string_are_interpolated(tmp_path: Path) -> None:
    """${VAR} in a value is replaced by the variable's value; a bare $ stays as it is."""
    text = """
[sinks.mail]
kind = "email"
host = "${SMTP_HOST}$1"
from = "noreply@example.test"
"""
    options = load(tmp_path, text, {"SMTP_HOST": "smtp.example.test"})

    assert options.sinks is not None
    assert repr(options.sinks.get("mail")) == (
        "EmailSink('mail', host='smtp.example.test$1', port=25)"
    )


def test_build_sinks_is_usable_without_a_file() -> None:
    """build_sinks takes a parsed table and an environment directly."""
    registry, policies = build_sinks(
        {"team": {"kind": "slack", "webhook_url": "https://${H}/x", "retry": {"jitter": 0}}},
        {"H": "hooks.test"},
        base=RetryPolicy(max_attempts=3),
    )

    assert registry.names() == ["team"]
    assert policies == {"team": RetryPolicy(max_attempts=3, jitter=0.0)}


def test_build_retry_reads_durations_and_numbers() -> None:
    """Durations accept units or plain seconds; unset keys keep the base."""
    assert build_retry({"base_backoff": 2, "max_backoff": "1m30s"}, "r") == RetryPolicy(
        base_backoff=2.0, max_backoff=90.0
    )


@pytest.mark.parametrize(
    ("text", "key", "code", "words"),
    [
        (
            '[sinks.mail]\nkind = "email"\nfrom = "a@example.test"\n',
            "sinks.mail.host",
            "missing_key",
            'required for kind "email"',
        ),
        (
            '[sinks.mail]\nkind = "email"\nhost = "smtp.test"\n',
            "sinks.mail.from",
            "missing_key",
            "required",
        ),
        ('[sinks.mail]\nhost = "smtp.test"\n', "sinks.mail.kind", "missing_key", "missing"),
        ('[sinks.sms]\nkind = "sms"\n', "sinks.sms.kind", "unknown_kind", "unknown sink kind"),
        ("[sinks.sms]\nkind = 3\n", "sinks.sms.kind", "wrong_type", "string"),
        (
            '[sinks.m]\nkind = "email"\nhost = "h"\nfrom = "a@b.test"\nport = 70000\n',
            "sinks.m.port",
            "invalid_value",
            "port",
        ),
        (
            '[sinks.m]\nkind = "email"\nhost = "h"\nfrom = "a@b.test"\nport = "25"\n',
            "sinks.m.port",
            "wrong_type",
            "integer",
        ),
        (
            '[sinks.m]\nkind = "email"\nhost = "h"\nfrom = "a@b.test"\nport = 0\n',
            "sinks.m.port",
            "out_of_range",
            "at least 1",
        ),
        (
            '[sinks.m]\nkind = "email"\nhost = "h"\nfrom = "nobody"\n',
            "sinks.m.from",
            "invalid_value",
            "email address",
        ),
        (
            '[sinks.m]\nkind = "email"\nhost = ""\nfrom = "a@b.test"\n',
            "sinks.m.host",
            "invalid_value",
            "empty",
        ),
        (
            '[sinks.m]\nkind = "email"\nhost = "h"\nfrom = "a@b.test"\nstarttls = "yes"\n',
            "sinks.m.starttls",
            "wrong_type",
            "boolean",
        ),
        (
            '[sinks.m]\nkind = "email"\nhost = "h"\nfrom = "a@b.test"\nusername = "u"\n',
            "sinks.m",
            "invalid_value",
            "username and password",
        ),
        (
            '[sinks.m]\nkind = "email"\nhost = "h"\nfrom = "a@b.test"\ntls = true\n'
            "starttls = true\n",
            "sinks.m",
            "invalid_value",
            "exclude",
        ),
        (
            '[sinks.m]\nkind = "email"\nhost = "h"\nfrom = "a@b.test"\nhots = "x"\n',
            "sinks.m.hots",
            "unknown_key",
            "did you mean 'host'",
        ),
        (
            '[sinks.m]\nkind = "slack"\nurl = "https://x.test"\n',
            "sinks.m.url",
            "unknown_key",
            "unknown key",
        ),
        ('[sinks.m]\nkind = "slack"\n', "sinks.m.webhook_url", "missing_key", "required"),
        (
            '[sinks.m]\nkind = "slack"\nwebhook_url = "hooks.slack.test/x"\n',
            "sinks.m.webhook_url",
            "invalid_value",
            "http",
        ),
        ('[sinks.m]\nkind = "webhook"\n', "sinks.m.url", "missing_key", "required"),
        (
            '[sinks.m]\nkind = "webhook"\nurl = "https://x.test"\nheaders = ["a"]\n',
            "sinks.m.headers",
            "wrong_type",
            "table",
        ),
        (
            '[sinks.m]\nkind = "webhook"\nurl = "https://x.test"\nheaders = { "a b" = "v" }\n',
            "sinks.m.headers.a b",
            "invalid_value",
            "header name",
        ),
        (
            '[sinks.m]\nkind = "webhook"\nurl = "https://x.test"\nheaders = { X = 1 }\n',
            "sinks.m.headers.X",
            "wrong_type",
            "string",
        ),
        (
            '[sinks.m]\nkind = "webhook"\nurl = "https://x.test"\nsecret = "${NOPE}"\n',
            "sinks.m.secret",
            "missing_env",
            "'NOPE' is not set",
        ),
        (
            '[sinks.m]\nkind = "webhook"\nurl = "https://x.test"\ntimeout = "0s"\n',
            "sinks.m.timeout",
            "out_of_range",
            "more than 0s",
        ),
        (
            '[sinks.m]\nkind = "webhook"\nurl = "https://x.test"\ntimeout = "soon"\n',
            "sinks.m.timeout",
            "bad_duration",
            "invalid duration",
        ),
        ('[sinks."bad name"]\nkind = "slack"\n', "sinks.bad name", "bad_name", "sink name"),
        ('sinks = "mail"\n', "sinks", "wrong_type", "table"),
        ("[sinks]\nmail = 3\n", "sinks.mail", "wrong_type", "table"),
        ("sink_retry = 3\n", "sink_retry", "wrong_type", "table"),
        ("[sink_retry]\nmax_attempts = 0\n", "sink_retry.max_attempts", "out_of_range", "1"),
        ("[sink_retry]\nmax_attempts = 2.0\n", "sink_retry.max_attempts", "wrong_type", "int"),
        ("[sink_retry]\njitter = 2\n", "sink_retry.jitter", "out_of_range", "between 0 and 1"),
        ("[sink_retry]\njitter = true\n", "sink_retry.jitter", "wrong_type", "number"),
        ("[sink_retry]\nbase_backoff = -1\n", "sink_retry.base_backoff", "bad_duration", ""),
        (
            '[sink_retry]\nmax_backoff = "500ms"\n',
            "sink_retry.max_backoff",
            "out_of_range",
            "must not exceed",
        ),
        (
            '[sink_retry]\nbase_backoff = "1m"\n',
            "sink_retry.base_backoff",
            "out_of_range",
            "must not exceed",
        ),
        ("[sink_retry]\nmax_attempt = 3\n", "sink_retry.max_attempt", "unknown_key", "did you"),
        (
            '[sinks.m]\nkind = "slack"\nwebhook_url = "https://x.test"\nretry = 3\n',
            "sinks.m.retry",
            "wrong_type",
            "table",
        ),
        (
            '[sinks.m]\nkind = "slack"\nwebhook_url = "https://x.test"\n'
            "[sinks.m.retry]\njitter = -1\n",
            "sinks.m.retry.jitter",
            "out_of_range",
            "between",
        ),
    ],
)
def test_bad_sink_config_fails_at_load_naming_the_key(
    tmp_path: Path, text: str, key: str, code: str, words: str
) -> None:
    """Every bad sink setting fails with a ConfigError naming the key and the problem."""
    caught = error(tmp_path, text, {})

    assert (caught.key, caught.code) == (key, code)
    assert words in caught.problem
    assert str(caught).startswith(f"{key}: ")


def test_secret_values_are_not_echoed_in_errors(tmp_path: Path) -> None:
    """A bad webhook URL or header value is reported without repeating it."""
    url_error = error(
        tmp_path, '[sinks.m]\nkind = "slack"\nwebhook_url = "${URL}"\n', {"URL": "tok3n-only"}
    )
    header_error = error(
        tmp_path,
        '[sinks.m]\nkind = "webhook"\nurl = "https://x.test"\nheaders = { A = "${V}" }\n',
        {"V": "s3cret\nX: y"},
    )

    assert "tok3n-only" not in str(url_error)
    assert "s3cret" not in str(header_error)
    assert header_error.key == "sinks.m.headers.A"
