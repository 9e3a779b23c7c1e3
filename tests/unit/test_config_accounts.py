"""``[accounts]``: what loads, and what is refused at load with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from parsec.config import ConfigError, load_options
from parsec.options import Options

KEY = "k" * 40
BASE = f'[accounts]\nsession_key = "{KEY}"\nbase_url = "https://parsec.example.com"\n'


def load_text(tmp_path: Path, text: str) -> Options:
    path = tmp_path / "parsec.toml"
    path.write_text(text)
    return load_options(path, env={})


def test_the_defaults(tmp_path: Path) -> None:
    accounts = load_text(tmp_path, BASE).accounts
    assert accounts is not None
    assert accounts.session_ttl == 7 * 86400
    assert accounts.token_ttl == 30 * 86400
    assert (accounts.org_max_connections, accounts.org_max_publications_per_second) == (0, 0)
    assert accounts.github is None


def test_durations_and_quotas(tmp_path: Path) -> None:
    accounts = load_text(
        tmp_path,
        BASE + 'session_ttl = "12h"\ntoken_ttl = "2160h"\norg_max_connections = 100\n'
        "org_max_publications_per_second = 50\n",
    ).accounts
    assert accounts is not None
    assert (accounts.session_ttl, accounts.token_ttl) == (12 * 3600, 90 * 86400)
    assert (accounts.org_max_connections, accounts.org_max_publications_per_second) == (100, 50)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[accounts]\nbase_url = "https://x"\n', "accounts.session_key"),
        (f'[accounts]\nsession_key = "{KEY}"\n', "accounts.base_url"),
        ('[accounts]\nsession_key = "short"\nbase_url = "https://x"\n', "accounts.session_key"),
        (f'[accounts]\nsession_key = "{KEY}"\nbase_url = "ftp://x"\n', "accounts.base_url"),
        (BASE + 'token_ttl = "0s"\n', "accounts.token_ttl"),
        (BASE + "org_max_connections = -1\n", "accounts.org_max_connections"),
        (
            BASE + "org_max_publications_per_second = -5\n",
            "accounts.org_max_publications_per_second",
        ),
        (BASE + 'org_max_connections = "many"\n', "accounts.org_max_connections"),
        (BASE + "no_such_key = 1\n", "accounts.no_such_key"),
    ],
)
def test_a_bad_accounts_table_names_its_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text)
    assert key in str(caught.value)
    assert KEY not in str(caught.value)
