"""The instance account's key: derived from the system account's seed, so every node
of a deployment connects to the same account without storing or sharing anything, and
an operator key rotation that keeps the system account keeps the instance's account."""

from __future__ import annotations

from operator_mode import options_for

from parsec.backends.nats import claims, instance
from parsec.backends.nats.keys import KeyRole, NKey
from parsec.backends.nats.operator import bootstrap


def test_every_node_derives_the_same_account_and_only_from_the_system_seed() -> None:
    setup = bootstrap("parsec-instance")
    one = instance.account_key(options_for(setup, "nats://127.0.0.1:4222"))
    two = instance.account_key(options_for(setup, "nats://10.0.0.2:4222"))
    assert one == two
    assert one.public_key.startswith("A")
    assert one.public_key != setup.system_account_public_key
    other = instance.account_key(options_for(bootstrap("parsec-instance"), "nats://x:4222"))
    assert other.public_key != one.public_key

    rotated = bootstrap("parsec-instance", system_account_seed=setup.system_account_seed)
    assert instance.account_key(options_for(rotated, "nats://x:4222")) == one


def test_derived_keys_differ_by_label_and_keep_their_role() -> None:
    secret = NKey.create(KeyRole.ACCOUNT)
    first = NKey.derived(secret, "first", KeyRole.ACCOUNT)
    assert NKey.derived(secret, "first", KeyRole.ACCOUNT) == first
    assert NKey.derived(secret, "second", KeyRole.ACCOUNT) != first
    user = NKey.derived(secret, "first", KeyRole.USER)
    assert user.public_key.startswith("U")
    assert user.seed.startswith("SU")


def test_an_instance_user_belongs_to_the_instance_account() -> None:
    options = options_for(bootstrap("parsec-instance"), "nats://127.0.0.1:4222")
    minted = instance.user(options, "parsec node-1")
    body = claims.decode(minted.jwt)
    assert body["iss"] == instance.account_key(options).public_key
    assert body["name"] == "parsec node-1"
    assert minted.reinstate is not None
