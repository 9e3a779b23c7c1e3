"""``[database]``: the accounts database's URL, from the file, PARSEC_DATABASE_URL or an
override; a URL Parsec cannot use is refused at load, without echoing its password."""

from __future__ import annotations

from pathlib import Path

import pytest

from parsec.config import ConfigError, load_options
from parsec.db.errors import DatabaseConfigError
from parsec.db.open import database_url
from parsec.db.url import redact
from parsec.options import Options


def load_text(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Options:
    path = tmp_path / "parsec.toml"
    path.write_text(text)
    return load_options(path, env=env or {})


def test_no_url_means_sqlite_in_the_state_dir(tmp_path: Path) -> None:
    """Unset, the database is parsec.db in the (absolute) state directory."""
    options = load_text(tmp_path, '[auth]\nstate_dir = "state"')
    assert options.database.url is None
    assert database_url(options) == f"sqlite+aiosqlite:///{Path('state').absolute()}/parsec.db"


def test_no_url_and_no_state_dir_is_a_clear_error() -> None:
    """A library user with neither gets told what to set, never an in-memory database."""
    with pytest.raises(DatabaseConfigError, match=r"\[database\] url") as caught:
        database_url(Options())
    assert caught.value.code == "PARSEC_DATABASE_CONFIG_INVALID"
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///relative/parsec.db",
        "sqlite+aiosqlite:////var/lib/parsec/parsec.db",
        "postgresql+asyncpg://parsec:pw@db.internal:5432/parsec",
        "postgresql+asyncpg://parsec@127.0.0.1/parsec?ssl=require",
    ],
)
def test_accepted_urls_load_from_the_file(tmp_path: Path, url: str) -> None:
    assert load_text(tmp_path, f'[database]\nurl = "{url}"').database.url == url


def test_the_environment_and_overrides_set_the_url(tmp_path: Path) -> None:
    """PARSEC_DATABASE_URL beats the file; an override (--url) beats both."""
    file_url = "sqlite+aiosqlite:///file.db"
    env_url = "sqlite+aiosqlite:///env.db"
    path = tmp_path / "parsec.toml"
    path.write_text(f'[database]\nurl = "{file_url}"')
    env = {"PARSEC_DATABASE_URL": env_url}
    assert load_options(path, env=env).database.url == env_url
    flag = "sqlite+aiosqlite:///flag.db"
    assert load_options(path, env=env, overrides={"database.url": flag}).database.url == flag


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("mysql://root:hunter2@db/parsec", "expected a sqlite+aiosqlite"),
        ("postgresql://root:hunter2@db/parsec", "expected a sqlite+aiosqlite"),
        ("sqlite:///parsec.db", "expected a sqlite+aiosqlite"),
        ("sqlite+aiosqlite://", "no host"),
        ("sqlite+aiosqlite:///:memory:", "needs a file"),
        ("postgresql+asyncpg://root:hunter2@/parsec", "needs a host"),
        ("postgresql+asyncpg://root:hunter2@db:5432/", "database name"),
        ("postgresql+asyncpg://root:hunter2@db:port/parsec", "malformed"),
        ("", "must not be empty"),
    ],
)
def test_unusable_urls_are_refused_naming_the_key(tmp_path: Path, url: str, words: str) -> None:
    """Refused with code bad_database_url (or invalid_value when empty); the password is
    never part of the message."""
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, f'[database]\nurl = "{url}"')
    assert caught.value.key == "database.url"
    assert words in caught.value.problem
    assert caught.value.code in ("bad_database_url", "invalid_value")
    assert "hunter2" not in str(caught.value)


def test_a_bad_url_from_the_environment_names_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_options(env={"PARSEC_DATABASE_URL": "redis://x:hunter2@h/0"})
    assert caught.value.key == "PARSEC_DATABASE_URL"
    assert caught.value.code == "bad_database_url"
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [("[database]\nurll = 'x'", "database.urll"), ("[database]\nurl = 5", "database.url")],
)
def test_unknown_keys_and_wrong_types_are_refused(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text)
    assert caught.value.key == key


def test_redaction_hides_only_the_password() -> None:
    assert (
        redact("postgresql+asyncpg://parsec:hunter2@db:5432/parsec")
        == "postgresql+asyncpg://parsec:***@db:5432/parsec"
    )
    assert redact("sqlite+aiosqlite:///a.db") == "sqlite+aiosqlite:///a.db"
