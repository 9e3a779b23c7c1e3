"""KeyRing: persistence, permissions, rotation rules and refusal of bad keyring files."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import stat
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from parsec.auth import key_material, keyring_file
from parsec.auth.keyring import Key, KeyRing, KeyRingError

SECRET_HEX = "ab" * 32
OTHER_SECRET_HEX = "cd" * 32


def _keys(ring: KeyRing) -> list[Key]:
    return ring.keys()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _document(**changes: Any) -> dict[str, Any]:
    """A valid format-2 keyring document with one active and one verify-only key."""
    document: dict[str, Any] = {
        "format_version": "2",
        "active_key_id": "k-000000000001",
        "keys": [
            {
                "id": "k-000000000001",
                "secret_hex": SECRET_HEX,
                "role": "active",
                "created_at": "2024-05-01T10:00:00.123456789Z",
                "alg": "HS256",
            },
            {
                "id": "k-000000000002",
                "secret_hex": OTHER_SECRET_HEX,
                "role": "verify-only",
                "created_at": "2024-05-02T10:00:00Z",
                "alg": "HS256",
            },
        ],
    }
    document.update(changes)
    return document


def _write(state_dir: Path, document: object) -> Path:
    state_dir.mkdir(exist_ok=True)
    path = state_dir / "keyring.json"
    path.write_text(json.dumps(document))
    return path


def _with_key(**changes: Any) -> dict[str, Any]:
    """The valid document with its first key changed."""
    document = _document()
    document["keys"][0].update(changes)
    return document


def test_open_creates_private_directory_and_file(tmp_path: Path) -> None:
    """A missing state dir is created 0700 with a 0600 keyring.json holding one HS256 key."""
    state_dir = tmp_path / "state" / "parsec"
    ring = KeyRing.open(state_dir)
    assert ring.path == state_dir / "keyring.json"
    assert _mode(state_dir) == 0o700
    assert _mode(state_dir / "keyring.json") == 0o600
    assert [key.id for key in _keys(ring)] == [ring.active.id]
    assert ring.active.alg == "HS256"
    assert ring.active.role == "active"
    assert re.fullmatch(r"k-[0-9a-f]{12}", ring.active.id)
    assert len(ring.active.secret) == 32


def test_open_writes_format_2(tmp_path: Path) -> None:
    """The created file is the Go Parsec's format 2 with an RFC 3339 UTC created_at."""
    ring = KeyRing.open(tmp_path)
    document = json.loads((tmp_path / "keyring.json").read_text())
    assert document["format_version"] == "2"
    assert document["active_key_id"] == ring.active.id
    [entry] = document["keys"]
    assert entry["id"] == ring.active.id
    assert entry["secret_hex"] == ring.active.secret.hex()
    assert entry["role"] == "active"
    assert entry["alg"] == "HS256"
    assert entry["created_at"].endswith("Z")
    assert datetime.fromisoformat(entry["created_at"]) == ring.active.created_at
    assert "retired_at" not in entry


def test_reopen_loads_the_same_keys(tmp_path: Path) -> None:
    """Opening the same state dir again gives back the same keys and secrets."""
    first = KeyRing.open(tmp_path)
    first.generate()
    second = KeyRing.open(tmp_path)
    assert second.keys() == first.keys()
    assert second.active == first.active


def test_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    """An existing state directory is used as it is; the file is still 0600."""
    tmp_path.chmod(0o750)
    KeyRing.open(tmp_path)
    assert _mode(tmp_path) == 0o750
    assert _mode(tmp_path / "keyring.json") == 0o600


def test_ephemeral_ring_warns(caplog: pytest.LogCaptureFixture) -> None:
    """Without a state dir the ring has one key, no path, and a WARNING explains the risk."""
    with caplog.at_level(logging.WARNING, logger="parsec.auth"):
        ring = KeyRing.open(None)
    assert ring.path is None
    assert [key.role for key in _keys(ring)] == ["active"]
    [record] = [r for r in caplog.records if r.name == "parsec.auth"]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "ephemeral" in message
    assert "exits" in message
    assert "state_dir" in message


def test_ephemeral_ring_rotates_in_memory() -> None:
    """An ephemeral ring supports generate/promote/retire, and reload keeps its keys."""
    ring = KeyRing.open(None)
    old = ring.active
    new = ring.generate()
    ring.promote(new.id)
    ring.retire(old.id)
    ring.reload()
    assert ring.active.id == new.id
    assert [(key.id, key.role) for key in _keys(ring)] == [(old.id, "retired"), (new.id, "active")]


def test_generate_joins_verify_only_and_persists(tmp_path: Path) -> None:
    """A generated key is verify-only, the active key is unchanged, and the file has both."""
    ring = KeyRing.open(tmp_path)
    active = ring.active
    key = ring.generate()
    assert key.role == "verify-only"
    assert key.alg == "HS256"
    assert key.id != active.id
    assert ring.active == active
    assert ring.get(key.id) == key
    assert KeyRing.open(tmp_path).get(key.id) == key
    assert _mode(tmp_path / "keyring.json") == 0o600


@pytest.mark.parametrize("alg", ["HS512", "PS256", "none", "", "hs256"])
def test_generate_unsupported_alg(tmp_path: Path, alg: str) -> None:
    """Generating an alg outside the supported five is refused, coded, and changes nothing."""
    ring = KeyRing.open(tmp_path)
    with pytest.raises(KeyRingError, match="is not supported") as raised:
        ring.generate(alg)
    assert raised.value.code == "PARSEC_INVALID_ARGUMENT"
    assert len(KeyRing.open(tmp_path).keys()) == 1


def test_promote_swaps_roles_and_persists(tmp_path: Path) -> None:
    """Promote makes a key active and demotes the previous active key to verify-only."""
    ring = KeyRing.open(tmp_path)
    old = ring.active
    new = ring.generate()
    ring.promote(new.id)
    assert ring.active.id == new.id
    assert ring.get(old.id) == dataclasses.replace(old, role="verify-only")
    reopened = KeyRing.open(tmp_path)
    assert reopened.active.id == new.id
    assert json.loads((tmp_path / "keyring.json").read_text())["active_key_id"] == new.id


def test_promote_active_key_is_a_no_op(tmp_path: Path) -> None:
    """Promoting the active key leaves the ring as it is."""
    ring = KeyRing.open(tmp_path)
    before = ring.keys()
    ring.promote(ring.active.id)
    assert ring.keys() == before


def test_cannot_promote_retired_key(tmp_path: Path) -> None:
    """A retired key is never active again."""
    ring = KeyRing.open(tmp_path)
    key = ring.generate()
    ring.retire(key.id)
    with pytest.raises(KeyRingError, match=f"cannot promote key {key.id}: it is retired"):
        ring.promote(key.id)


def test_retire_sets_role_and_time(tmp_path: Path) -> None:
    """Retiring a verify-only key records retired_at, keeps the key and persists."""
    ring = KeyRing.open(tmp_path)
    key = ring.generate()
    ring.retire(key.id)
    retired = ring.get(key.id)
    assert retired is not None
    assert retired.role == "retired"
    assert retired.retired_at is not None
    assert retired.retired_at >= retired.created_at
    assert KeyRing.open(tmp_path).get(key.id) == retired


def test_retire_twice_keeps_first_time(tmp_path: Path) -> None:
    """Retiring a retired key does nothing."""
    ring = KeyRing.open(tmp_path)
    key = ring.generate()
    ring.retire(key.id)
    first = ring.get(key.id)
    ring.retire(key.id)
    assert ring.get(key.id) == first


def test_cannot_retire_active_key(tmp_path: Path) -> None:
    """The active key cannot be retired; the message says to promote another first."""
    ring = KeyRing.open(tmp_path)
    with pytest.raises(KeyRingError, match="active key; promote another"):
        ring.retire(ring.active.id)
    assert ring.active.role == "active"


@pytest.mark.parametrize("operation", ["promote", "retire"])
def test_unknown_kid(tmp_path: Path, operation: str) -> None:
    """Role changes on a kid the ring does not have name the kid."""
    ring = KeyRing.open(tmp_path)
    with pytest.raises(KeyRingError, match="no key 'k-ffffffffffff'"):
        getattr(ring, operation)("k-ffffffffffff")


def test_get_unknown_kid_is_none(tmp_path: Path) -> None:
    """get() answers None for a kid the ring does not have."""
    assert KeyRing.open(tmp_path).get("k-ffffffffffff") is None


def test_loads_existing_file(tmp_path: Path) -> None:
    """A valid format-2 file loads with its roles, secrets and nanosecond timestamps."""
    _write(tmp_path, _document())
    ring = KeyRing.open(tmp_path)
    assert ring.active.id == "k-000000000001"
    assert ring.active.secret == bytes.fromhex(SECRET_HEX)
    assert ring.active.created_at.microsecond == 123456
    assert [key.role for key in _keys(ring)] == ["active", "verify-only"]


def test_format_1_reads_as_hs256_and_is_rewritten_as_2(tmp_path: Path) -> None:
    """A format-1 file (no alg) loads as HS256 and the next change writes format 2."""
    document = _document(format_version="1")
    for entry in document["keys"]:
        del entry["alg"]
    _write(tmp_path, document)
    ring = KeyRing.open(tmp_path)
    assert {key.alg for key in _keys(ring)} == {"HS256"}
    ring.generate()
    written = json.loads((tmp_path / "keyring.json").read_text())
    assert written["format_version"] == "2"
    assert {entry["alg"] for entry in written["keys"]} == {"HS256"}


def test_empty_alg_reads_as_hs256(tmp_path: Path) -> None:
    """An empty alg in a format-2 file means HS256."""
    _write(tmp_path, _with_key(alg=""))
    assert KeyRing.open(tmp_path).active.alg == "HS256"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "truncated"),
        (b"\x00\xffgarbage", "malformed"),
        (b"{not json", "malformed"),
        (b"[]", "Expected `object`"),
        (b'{"format_version": 2}', "format_version"),
        (b'{"format_version": "3", "keys": "whatever"}', "format_version '3' is not supported"),
        (b'{"active_key_id": "k-1", "keys": []}', "format_version"),
        (b'{"format_version": "2", "keys": []}', "active_key_id"),
    ],
)
def test_unusable_file_contents(tmp_path: Path, content: bytes, problem: str) -> None:
    """Garbage, non-objects and unsupported versions raise KeyRingError naming the file."""
    path = tmp_path / "keyring.json"
    path.write_bytes(content)
    with pytest.raises(KeyRingError) as raised:
        KeyRing.open(tmp_path)
    assert str(path) in str(raised.value)
    assert problem in str(raised.value)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (_document(keys=[]), "it has no keys"),
        (_document(active_key_id="k-000000000002"), "is not the key whose role is active"),
        (_with_key(role="verify-only"), "exactly one key must have role active, found 0"),
        (_with_key(role="owner"), "role 'owner'"),
        (_with_key(alg="PS256"), "alg 'PS256', which this build does not support"),
        (_with_key(alg="EdDSA"), "is EdDSA but has a secret_hex"),
        (_with_key(private_pem="-----BEGIN PRIVATE KEY-----"), "has a private_pem"),
        (_with_key(secret_hex="zz" * 32), "secret_hex is not hexadecimal"),
        (_with_key(secret_hex="abc"), "secret_hex is not hexadecimal"),
        (_with_key(secret_hex="ab" * 16), "secret is 16 bytes; at least 32"),
        (_with_key(secret_hex=12), "Expected `str`, got `int`"),
        (_with_key(id=""), "empty id"),
        (_with_key(id="k-000000000002"), "appears twice"),
        (_with_key(created_at="yesterday"), "created_at 'yesterday' is not an RFC 3339 time"),
        (_with_key(created_at="2024-05-01T10:00:00"), "has no UTC offset"),
        (_with_key(retired_at="soon"), "retired_at 'soon'"),
    ],
)
def test_invalid_keyring_documents(tmp_path: Path, document: object, problem: str) -> None:
    """Each broken document raises KeyRingError naming the file and the problem."""
    path = _write(tmp_path, document)
    with pytest.raises(KeyRingError) as raised:
        KeyRing.open(tmp_path)
    message = str(raised.value)
    assert str(path) in message
    assert problem in message


def test_errors_never_show_secrets(tmp_path: Path) -> None:
    """A rejected file's message does not contain any secret_hex from it."""
    _write(tmp_path, _with_key(role="owner"))
    with pytest.raises(KeyRingError) as raised:
        KeyRing.open(tmp_path)
    assert SECRET_HEX not in str(raised.value)
    assert OTHER_SECRET_HEX not in str(raised.value)


def test_key_repr_hides_secret(tmp_path: Path) -> None:
    """repr(Key), as a log line would show it, does not contain the secret."""
    key = KeyRing.open(tmp_path).active
    assert isinstance(key, Key)
    assert key.secret.hex() not in repr(key)
    assert repr(key.secret) not in repr(key)


def test_state_dir_that_is_a_file(tmp_path: Path) -> None:
    """A state dir path that is a regular file raises KeyRingError naming it."""
    target = tmp_path / "state"
    target.write_text("not a directory")
    with pytest.raises(KeyRingError, match=f"cannot create state directory {target}"):
        KeyRing.open(target)


def test_state_dir_created_by_another_worker_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers start at once: the directory appears between one worker's check
    and its mkdir. Losing that race is not an error (it stopped `--workers 2`)."""
    target = tmp_path / "state"
    target.mkdir()
    real_is_dir = Path.is_dir
    checked: list[Path] = []

    def not_yet(path: Path) -> bool:
        if path == target and not checked:
            checked.append(path)
            return False
        return real_is_dir(path)

    monkeypatch.setattr(Path, "is_dir", not_yet)
    ring = KeyRing.open(target)
    assert checked == [target]
    assert ring.active is not None
    assert stat.S_IMODE(target.stat().st_mode) == 0o700


def test_unreadable_keyring_path(tmp_path: Path) -> None:
    """A keyring.json that is a directory raises KeyRingError, not OSError."""
    (tmp_path / "keyring.json").mkdir()
    with pytest.raises(KeyRingError, match="cannot read keyring file"):
        KeyRing.open(tmp_path)


def test_reload_sees_other_process_changes(tmp_path: Path) -> None:
    """reload() picks up a key that another ring on the same dir generated and promoted."""
    server = KeyRing.open(tmp_path)
    operator = KeyRing.open(tmp_path)
    key = operator.generate()
    operator.promote(key.id)
    assert server.get(key.id) is None
    server.reload()
    assert server.active.id == key.id


def test_changes_do_not_overwrite_other_process_changes(tmp_path: Path) -> None:
    """A change re-reads the file first, so two rings' generated keys both survive."""
    first = KeyRing.open(tmp_path)
    second = KeyRing.open(tmp_path)
    a = first.generate()
    b = second.generate()
    ids = {key.id for key in _keys(KeyRing.open(tmp_path))}
    assert {a.id, b.id} <= ids
    assert {a.id, b.id} <= {key.id for key in _keys(second)}


def test_reload_of_corrupt_file_keeps_keys(tmp_path: Path) -> None:
    """A failed reload raises and leaves the ring's keys usable."""
    ring = KeyRing.open(tmp_path)
    before = ring.keys()
    (tmp_path / "keyring.json").write_text("{")
    with pytest.raises(KeyRingError, match="is not a valid keyring"):
        ring.reload()
    assert ring.keys() == before


def test_reload_of_missing_file(tmp_path: Path) -> None:
    """reload() after the file was deleted says the file does not exist."""
    ring = KeyRing.open(tmp_path)
    (tmp_path / "keyring.json").unlink()
    with pytest.raises(KeyRingError, match="does not exist"):
        ring.reload()


def test_failed_write_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the atomic replace fails the ring and the file keep the old keys, no temp remains."""
    ring = KeyRing.open(tmp_path)
    before = ring.keys()
    on_disk = (tmp_path / "keyring.json").read_bytes()

    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(KeyRingError, match=r"cannot write keyring file .*No space left"):
        ring.generate()
    assert ring.keys() == before
    assert (tmp_path / "keyring.json").read_bytes() == on_disk
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keyring.json"]


def test_writes_leave_no_temp_files(tmp_path: Path) -> None:
    """After creation and a rotation the directory holds only keyring.json."""
    ring = KeyRing.open(tmp_path)
    ring.promote(ring.generate().id)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keyring.json"]


def test_creation_race_adopts_the_winner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When another process creates keyring.json first, open() uses that ring, not its own."""
    winner = KeyRing.open(tmp_path)
    real_read = keyring_file.read
    calls = []

    def read_as_if_absent_once(path: Path) -> object:
        calls.append(path)
        if len(calls) == 1:
            raise FileNotFoundError(path)
        return real_read(path)

    monkeypatch.setattr(keyring_file, "read", read_as_if_absent_once)
    loser = KeyRing.open(tmp_path)
    assert loser.active == winner.active
    assert len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keyring.json"]


def _fail(*args: object, **kwargs: object) -> None:
    raise OSError(5, "Input/output error")


@pytest.mark.parametrize("target", ["mkstemp", "fsync"])
def test_temp_file_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    """A failure while writing the temp file is a KeyRingError and leaves no temp file."""
    ring = KeyRing.open(tmp_path)
    monkeypatch.setattr(tempfile if target == "mkstemp" else os, target, _fail)
    with pytest.raises(KeyRingError, match=r"cannot write keyring file .*Input/output error"):
        ring.generate()
    assert len(ring.keys()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keyring.json"]


def test_create_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the new file cannot be put in place, open() says so and leaves no temp file."""
    monkeypatch.setattr(os, "link", _fail)
    with pytest.raises(KeyRingError, match=r"cannot create keyring file .*Input/output error"):
        KeyRing.open(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_generated_kid_never_collides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If a random kid is already taken, another one is drawn."""
    ring = KeyRing.open(tmp_path)
    kids = iter([ring.active.id, "k-aaaaaaaaaaaa"])
    monkeypatch.setattr(key_material, "new_kid", lambda: next(kids))
    assert ring.generate().id == "k-aaaaaaaaaaaa"


# -- asymmetric keys --------------------------------------------------------------------------

ALGS = ["HS256", "RS256", "ES256", "ES384", "EdDSA"]
ASYMMETRIC = ["RS256", "ES256", "ES384", "EdDSA"]


def _pkcs8(private: Any) -> str:
    return str(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    )


def _asymmetric_document(alg: str, pem: str) -> dict[str, Any]:
    """The valid document plus a verify-only key of ``alg`` holding ``pem``."""
    document = _document()
    entry = {
        "id": "k-000000000003",
        "role": "verify-only",
        "created_at": "2024-05-03T10:00:00Z",
        "alg": alg,
        "private_pem": pem,
    }
    document["keys"].append(entry)
    return document


@pytest.mark.parametrize("alg", ALGS)
def test_generate_every_alg_persists(tmp_path: Path, alg: str) -> None:
    """Each supported alg generates a verify-only key that another ring reads back equal."""
    ring = KeyRing.open(tmp_path)
    key = ring.generate(alg)
    assert (key.alg, key.role) == (alg, "verify-only")
    assert key.asymmetric is (alg != "HS256")
    assert KeyRing.open(tmp_path).get(key.id) == key
    entry = next(
        entry
        for entry in json.loads((tmp_path / "keyring.json").read_text())["keys"]
        if entry["id"] == key.id
    )
    assert entry["alg"] == alg
    if alg == "HS256":
        assert "private_pem" not in entry
        assert len(bytes.fromhex(entry["secret_hex"])) == 32
    else:
        assert "secret_hex" not in entry
        assert entry["private_pem"].startswith("-----BEGIN PRIVATE KEY-----")


@pytest.mark.parametrize(
    ("alg", "expected"),
    [
        ("RS256", lambda key: isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048),
        ("ES256", lambda key: isinstance(key.curve, ec.SECP256R1)),
        ("ES384", lambda key: isinstance(key.curve, ec.SECP384R1)),
        ("EdDSA", lambda key: isinstance(key, ed25519.Ed25519PrivateKey)),
    ],
)
def test_generated_key_types(alg: str, expected: Any) -> None:
    """RS256 is RSA 2048, ES256 / ES384 are P-256 / P-384, EdDSA is Ed25519."""
    key = KeyRing.open(None).generate(alg)
    assert expected(serialization.load_pem_private_key(key.private_pem, password=None))


@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_promote_asymmetric_key(tmp_path: Path, alg: str) -> None:
    """An asymmetric key can be promoted to active and the old HMAC key retired."""
    ring = KeyRing.open(tmp_path)
    old = ring.active
    key = ring.generate(alg)
    ring.promote(key.id)
    ring.retire(old.id)
    reopened = KeyRing.open(tmp_path)
    assert reopened.active == dataclasses.replace(key, role="active")
    assert reopened.get(old.id) is not None
    assert reopened.get(old.id).role == "retired"  # type: ignore[union-attr]


def test_private_key_is_parsed_once() -> None:
    """private_key() gives the parsed key, the same object each time; HMAC keys have none."""
    ring = KeyRing.open(None)
    key = ring.generate("ES384")
    private = key.private_key()
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert key.private_key() is private
    with pytest.raises(ValueError, match="has no private key"):
        ring.active.private_key()


def test_key_repr_hides_private_key() -> None:
    """repr(Key) of an asymmetric key shows no part of its PEM."""
    key = KeyRing.open(None).generate("ES256")
    body = key.private_pem.decode().splitlines()[1]
    assert body not in repr(key)


def test_loads_hand_written_asymmetric_keys(tmp_path: Path) -> None:
    """A file with PKCS#8 keys of every asymmetric alg loads with the right algs."""
    document = _document()
    privates = {
        "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES256": ec.generate_private_key(ec.SECP256R1()),
        "ES384": ec.generate_private_key(ec.SECP384R1()),
        "EdDSA": ed25519.Ed25519PrivateKey.generate(),
    }
    for number, (alg, private) in enumerate(privates.items(), start=3):
        document["keys"].append(
            {
                "id": f"k-00000000000{number}",
                "secret_hex": "",
                "role": "verify-only",
                "created_at": "2024-05-03T10:00:00Z",
                "alg": alg,
                "private_pem": _pkcs8(private),
            }
        )
    _write(tmp_path, document)
    ring = KeyRing.open(tmp_path)
    assert [key.alg for key in _keys(ring)] == ["HS256", "HS256", *privates]


def _p256() -> str:
    return _pkcs8(ec.generate_private_key(ec.SECP256R1()))


@pytest.mark.parametrize(
    ("alg", "pem", "problem"),
    [
        ("ES384", _p256(), "is ES384 but its private_pem is not an EC key on curve secp384r1"),
        ("RS256", _p256(), "is RS256 but its private_pem is not an RSA key"),
        ("EdDSA", _p256(), "is EdDSA but its private_pem is not an Ed25519 key"),
        (
            "ES256",
            _pkcs8(ed25519.Ed25519PrivateKey.generate()),
            "is ES256 but its private_pem is not an EC key on curve secp256r1",
        ),
        (
            "RS256",
            _pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
            "not an RSA key of at least 2048 bits",
        ),
        ("ES256", "", "is ES256 but has no private_pem"),
        ("ES256", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not an "),
        (
            "ES256",
            ec.generate_private_key(ec.SECP256R1())
            .private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
            .decode(),
            "is not a PKCS#8 PEM",
        ),
        (
            "ES256",
            ec.generate_private_key(ec.SECP256R1())
            .private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"password"),
            )
            .decode(),
            "is not a PKCS#8 PEM",
        ),
    ],
)
def test_invalid_private_keys(tmp_path: Path, alg: str, pem: str, problem: str) -> None:
    """A private_pem of the wrong type, curve or size, or not PKCS#8, makes the file invalid."""
    path = _write(tmp_path, _asymmetric_document(alg, pem))
    with pytest.raises(KeyRingError) as raised:
        KeyRing.open(tmp_path)
    message = str(raised.value)
    assert str(path) in message
    assert problem in message
    assert all(line not in message for line in pem.splitlines()[1:-1])


def test_asymmetric_key_with_secret_hex_is_refused(tmp_path: Path) -> None:
    """An asymmetric key may not also carry an HMAC secret."""
    document = _asymmetric_document("ES256", _p256())
    document["keys"][2]["secret_hex"] = SECRET_HEX
    _write(tmp_path, document)
    with pytest.raises(KeyRingError, match="is ES256 but has a secret_hex"):
        KeyRing.open(tmp_path)


@pytest.mark.parametrize("where", ["document", "key"])
def test_unknown_fields_are_refused(tmp_path: Path, where: str) -> None:
    """Strict decoding: an unknown field in the document or in a key is an error."""
    document = _document()
    (document if where == "document" else document["keys"][0])["surprise"] = 1
    _write(tmp_path, document)
    with pytest.raises(KeyRingError, match="surprise"):
        KeyRing.open(tmp_path)


# -- error codes ------------------------------------------------------------------------------


def test_error_codes(tmp_path: Path) -> None:
    """Unknown kid, retiring the active key and promoting a retired key carry PARSEC codes."""
    ring = KeyRing.open(tmp_path)
    with pytest.raises(KeyRingError) as unknown:
        ring.promote("k-ffffffffffff")
    assert unknown.value.code == "PARSEC_KEY_NOT_FOUND"
    with pytest.raises(KeyRingError) as active:
        ring.retire(ring.active.id)
    assert active.value.code == "PARSEC_KEY_ACTIVE"
    old = ring.active.id
    ring.promote(ring.generate().id)
    ring.retire(old)
    with pytest.raises(KeyRingError) as retired:
        ring.promote(old)
    assert retired.value.code == "PARSEC_INVALID_ARGUMENT"


def test_file_errors_are_internal(tmp_path: Path) -> None:
    """A keyring file that cannot be used is PARSEC_INTERNAL."""
    (tmp_path / "keyring.json").write_text("{")
    with pytest.raises(KeyRingError) as raised:
        KeyRing.open(tmp_path)
    assert raised.value.code == "PARSEC_INTERNAL"


# -- export / import --------------------------------------------------------------------------


def test_snapshot_is_the_file_document(tmp_path: Path) -> None:
    """snapshot_json() is the keyring.json document the ring last wrote."""
    ring = KeyRing.open(tmp_path)
    ring.generate("EdDSA")
    assert ring.snapshot_json() == (tmp_path / "keyring.json").read_bytes()
    assert json.loads(ring.snapshot_json())["format_version"] == "2"


def test_ephemeral_ring_snapshot_round_trips(tmp_path: Path) -> None:
    """An in-memory ring exports too, and a file ring imports it with every key."""
    source = KeyRing.open(None)
    source.promote(source.generate("RS256").id)
    target = KeyRing.open(tmp_path)
    kids = target.import_json(source.snapshot_json())
    assert kids == [key.id for key in _keys(source)]
    assert target.active == source.active


def test_export_import_round_trip(tmp_path: Path) -> None:
    """Importing one ring's snapshot into another makes it sign alike and keeps its own keys."""
    source = KeyRing.open(tmp_path / "a")
    for alg in ASYMMETRIC:
        source.generate(alg)
    source.promote(source.keys()[-1].id)
    target = KeyRing.open(tmp_path / "b")
    own = target.active
    kids = target.import_json(source.snapshot_json())
    assert kids == [key.id for key in _keys(source)]
    assert target.active == source.active
    for key in _keys(source):
        assert target.get(key.id) == key
    assert target.get(own.id) == dataclasses.replace(own, role="verify-only")
    reopened = KeyRing.open(tmp_path / "b")
    assert reopened.keys() == target.keys()


def test_import_is_idempotent(tmp_path: Path) -> None:
    """Importing the same snapshot twice changes nothing the second time."""
    source = KeyRing.open(tmp_path / "a")
    target = KeyRing.open(tmp_path / "b")
    target.import_json(source.snapshot_json())
    before = target.snapshot_json()
    target.import_json(source.snapshot_json())
    assert target.snapshot_json() == before


def test_import_same_kid_different_secret_is_refused(tmp_path: Path) -> None:
    """A key whose id exists here with another secret is refused; the ring is unchanged."""
    ring = KeyRing.open(tmp_path)
    before = ring.snapshot_json()
    forged = json.loads(before)
    forged["keys"][0]["secret_hex"] = OTHER_SECRET_HEX
    with pytest.raises(KeyRingError, match="same id but a different secret") as raised:
        ring.import_json(json.dumps(forged).encode())
    assert raised.value.code == "PARSEC_INVALID_ARGUMENT"
    assert OTHER_SECRET_HEX not in str(raised.value)
    assert ring.snapshot_json() == before
    assert (tmp_path / "keyring.json").read_bytes() == before


def test_import_same_kid_different_alg_is_refused(tmp_path: Path) -> None:
    """A key whose id exists here as HS256 but arrives as ES256 is a conflict too."""
    ring = KeyRing.open(tmp_path)
    kid = ring.generate().id
    other = KeyRing.open(None)
    key = other.generate("ES256")
    document = json.loads(other.snapshot_json())
    for entry in document["keys"]:
        if entry["id"] == key.id:
            entry["id"] = kid
    with pytest.raises(KeyRingError, match=f"cannot import key {kid}"):
        ring.import_json(json.dumps(document).encode())


def test_import_force_replaces_the_conflicting_key(tmp_path: Path) -> None:
    """With force, the document's key replaces the local key of the same id."""
    ring = KeyRing.open(tmp_path)
    forged = json.loads(ring.snapshot_json())
    forged["keys"][0]["secret_hex"] = OTHER_SECRET_HEX
    assert ring.import_json(json.dumps(forged).encode(), force=True) == [ring.active.id]
    assert ring.active.secret == bytes.fromhex(OTHER_SECRET_HEX)
    assert KeyRing.open(tmp_path).active.secret == bytes.fromhex(OTHER_SECRET_HEX)


def test_import_never_resurrects_a_retired_key(tmp_path: Path) -> None:
    """A key retired here stays retired even if the snapshot lists it as verify-only."""
    ring = KeyRing.open(tmp_path)
    old = ring.active
    snapshot = ring.snapshot_json()
    new = ring.generate()
    ring.promote(new.id)
    ring.retire(old.id)
    document = json.loads(snapshot)
    document["keys"][0]["role"] = "verify-only"
    document["keys"].append({**_entry_json(ring, new.id), "role": "active"})
    document["active_key_id"] = new.id
    ring.import_json(json.dumps(document).encode())
    assert ring.get(old.id).role == "retired"  # type: ignore[union-attr]


def test_import_whose_active_key_is_retired_here(tmp_path: Path) -> None:
    """A snapshot whose active key this ring has retired is refused."""
    ring = KeyRing.open(tmp_path)
    snapshot = ring.snapshot_json()
    old = ring.active
    ring.promote(ring.generate().id)
    ring.retire(old.id)
    with pytest.raises(KeyRingError, match="is retired in this keyring"):
        ring.import_json(snapshot)
    assert ring.get(old.id).role == "retired"  # type: ignore[union-attr]


def _entry_json(ring: KeyRing, kid: str) -> dict[str, Any]:
    entries: list[dict[str, Any]] = json.loads(ring.snapshot_json())["keys"]
    return next(entry for entry in entries if entry["id"] == kid)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "truncated"),
        (b"{not json", "malformed"),
        (b'{"format_version": "9"}', "format_version '9' is not supported"),
        (json.dumps(_with_key(role="owner")).encode(), "role 'owner'"),
        (json.dumps(_document(extra=True)).encode(), "extra"),
        (json.dumps(_document(keys=[])).encode(), "it has no keys"),
    ],
)
def test_import_of_invalid_documents(tmp_path: Path, data: bytes, problem: str) -> None:
    """A document that is not a valid keyring is refused with INVALID_ARGUMENT, nothing saved."""
    ring = KeyRing.open(tmp_path)
    before = ring.snapshot_json()
    with pytest.raises(KeyRingError, match="cannot import") as raised:
        ring.import_json(data)
    assert problem in str(raised.value)
    assert raised.value.code == "PARSEC_INVALID_ARGUMENT"
    assert (tmp_path / "keyring.json").read_bytes() == before


def test_adopt_makes_a_document_the_whole_ring_of_a_new_state_dir(tmp_path: Path) -> None:
    """A new state dir adopts an exported document as is (no fresh key of its own); a
    state dir that has a keyring refuses to adopt."""
    source = KeyRing.open(tmp_path / "a")
    source.generate("ES256")
    document = source.snapshot_json()

    adopted = KeyRing.adopt(tmp_path / "b", document)

    assert [k.id for k in adopted.keys()] == [k.id for k in source.keys()]
    assert adopted.active.id == source.active.id
    assert KeyRing.open(tmp_path / "b").snapshot_json() == adopted.snapshot_json()
    with pytest.raises(KeyRingError):
        KeyRing.adopt(tmp_path / "b", document)
    with pytest.raises(KeyRingError):
        KeyRing.adopt(tmp_path / "c", b"{not json")
