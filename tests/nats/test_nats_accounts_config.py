"""``[nats]``: the per-org accounts' operator and system account, from a file or
``PARSEC_NATS_*``, checked to fit together; a seed never appears in an error or a
repr."""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import pytest

from parsec.backends.nats.operator import OperatorSetup, bootstrap
from parsec.config import ConfigError, load_options

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setup() -> OperatorSetup:
    return bootstrap("parsec-test")


def _env(setup: OperatorSetup, **changes: str) -> dict[str, str]:
    env = {
        "PARSEC_BROKER_URL": "nats://127.0.0.1:4222",
        "PARSEC_NATS_OPERATOR_SEED": setup.operator_seed,
        "PARSEC_NATS_OPERATOR_JWT": setup.operator_jwt,
        "PARSEC_NATS_SYSTEM_ACCOUNT_JWT": setup.system_account_jwt,
        "PARSEC_NATS_SYSTEM_ACCOUNT_SEED": setup.system_account_seed,
    }
    env.update(changes)
    return env


def _toml(setup: OperatorSetup, *, skip: str = "", **changes: str) -> str:
    values = {
        "operator_seed": setup.operator_seed,
        "operator_jwt": setup.operator_jwt,
        "system_account_jwt": setup.system_account_jwt,
        "system_account_seed": setup.system_account_seed,
        **changes,
    }
    lines = [f'{key} = "{value}"' for key, value in values.items() if key != skip]
    return "[nats]\n" + "\n".join(lines) + "\n"


def _refused(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> ConfigError:
    path = tmp_path / "parsec.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_options(path, env=env or {"PARSEC_BROKER_URL": "nats://127.0.0.1:4222"})
    return raised.value


def test_the_four_values_load_from_the_environment(setup: OperatorSetup) -> None:
    """PARSEC_NATS_* set ``[nats]``; its url defaults to the NATS broker's; the seeds
    stay out of the repr."""
    options = load_options(env=_env(setup)).nats
    assert options is not None
    assert options.url == "nats://127.0.0.1:4222"
    assert options.operator_seed == setup.operator_seed
    assert options.system_account_seed == setup.system_account_seed
    assert setup.operator_seed not in repr(options)
    assert setup.system_account_seed not in repr(options)
    own = load_options(env=_env(setup, PARSEC_NATS_URL="nats://10.0.0.9:4222")).nats
    assert own is not None
    assert own.url == "nats://10.0.0.9:4222"


def test_without_nats_section_there_are_no_per_org_accounts() -> None:
    """No ``[nats]``: ``options.nats`` is None (one account for all traffic)."""
    assert load_options(env={}).nats is None


def test_a_bad_operator_seed_is_a_clear_error_without_the_seed(
    setup: OperatorSetup, tmp_path: Path
) -> None:
    """A mistyped seed (bad checksum), a seed of another role, or no seed at all: the
    error names the key, says what is wrong, and never repeats the value."""
    typo = setup.operator_seed[:-3] + ("AAA" if not setup.operator_seed.endswith("AAA") else "BBB")
    cases = {
        typo: "bad checksum",
        setup.system_account_seed: "seed of another kind of key",
        "SOnot-base32!": "not base32",
    }
    for seed, problem in cases.items():
        error = _refused(tmp_path, _toml(setup, operator_seed=seed))
        assert error.key == "nats.operator_seed"
        assert problem in str(error)
        assert seed not in str(error)
    with pytest.raises(ConfigError) as from_env:
        load_options(env=_env(setup, PARSEC_NATS_OPERATOR_SEED=typo))
    assert from_env.value.key == "PARSEC_NATS_OPERATOR_SEED"
    assert typo not in str(from_env.value)


def test_values_that_do_not_fit_together_are_refused(setup: OperatorSetup, tmp_path: Path) -> None:
    """Another operator's seed, a system account of another operator, a system seed
    of another account, a JWT that is not one: each names the key at fault."""
    other = bootstrap("other")
    cases = [
        ({"operator_seed": other.operator_seed}, "nats.operator_seed", "neither operator_jwt"),
        ({"system_account_jwt": other.system_account_jwt}, "nats.system_account_jwt", "not signed"),
        ({"system_account_seed": other.system_account_seed}, "nats.system_account_seed", "not of"),
        ({"operator_jwt": setup.system_account_jwt}, "nats.operator_jwt", "not an operator JWT"),
        ({"operator_jwt": "eyJ.nope.x"}, "nats.operator_jwt", "not a NATS JWT"),
    ]
    for changes, key, problem in cases:
        error = _refused(tmp_path, _toml(setup, **changes))
        assert (error.key, problem in str(error)) == (key, True), str(error)
        for seed in (other.operator_seed, other.system_account_seed, setup.operator_seed):
            assert seed not in str(error)


def test_missing_values_are_named(setup: OperatorSetup, tmp_path: Path) -> None:
    """Each of the four is required; url is required when the broker is not NATS."""
    for key in ("operator_seed", "operator_jwt", "system_account_jwt", "system_account_seed"):
        assert _refused(tmp_path, _toml(setup, skip=key)).key == f"nats.{key}"
    error = _refused(tmp_path, _toml(setup), env={"PARSEC_BROKER_URL": "memory://"})
    assert error.key == "nats.url"
    assert "broker is not NATS" in str(error)
    error = _refused(tmp_path, _toml(setup, url="http://x"))
    assert error.key == "nats.url"


def test_the_documented_bootstrap_makes_a_configuration_parsec_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/nats-accounts.md's bootstrap script writes nats-server.conf and a
    parsec.toml ``[nats]`` section that loads."""
    text = (REPO / "docs" / "nats-accounts.md").read_text()
    script = text.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "bootstrap.py").write_text(script)
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(tmp_path / "bootstrap.py"))
    assert "operator:" in (tmp_path / "nats-server.conf").read_text()
    assert os.stat(tmp_path / "parsec-nats.toml").st_mode & 0o077 == 0
    (tmp_path / "parsec.toml").write_text(
        '[broker]\nurl = "nats://127.0.0.1:4222"\n\n' + (tmp_path / "parsec-nats.toml").read_text()
    )
    options = load_options(tmp_path / "parsec.toml", env={}).nats
    assert options is not None
    assert options.url == "nats://127.0.0.1:4222"
