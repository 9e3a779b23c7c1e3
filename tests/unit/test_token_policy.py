"""The token broker's policy parts and its ``[token_broker]`` configuration."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from parsec.config import ConfigError, load_options
from parsec.options import TokenBrokerOptions, TokenBrokerRole
from parsec.services.token_authn import AuthenticatorChain, JWTBearerAuthenticator
from parsec.services.token_policy import (
    ALLOW_ALL,
    DENY_ALL,
    AllowDelegation,
    DelegationRefused,
    DenyDelegation,
    Principal,
    RoleAuthorizer,
    Unauthenticated,
    claim_at,
)

ROLES = {"member": ["chat:*"], "staff": ["staff:*", "ops:alerts"]}


def principal(claims: Mapping[str, object], *, admin: bool = False) -> Principal:
    return Principal("alice", claims, admin=admin)


def test_claim_at_walks_a_dotted_path() -> None:
    claims = {"realm_access": {"roles": ["member"]}, "roles": "x"}

    assert claim_at(claims, "realm_access.roles") == ["member"]
    assert claim_at(claims, "roles") == "x"
    assert claim_at(claims, "realm_access.missing") is None
    assert claim_at(claims, "roles.deeper") is None


def test_a_channel_is_granted_when_one_role_has_a_matching_pattern() -> None:
    """Two roles add up; each other channel is denied with a reason naming the roles."""
    authorizer = RoleAuthorizer(ROLES)

    decision = authorizer.authorize(
        principal({"roles": ["member", "staff"]}), ["chat:a", "ops:alerts", "ops:other"]
    )

    assert decision.granted == ("chat:a", "ops:alerts")
    assert [d.channel for d in decision.denied] == ["ops:other"]
    assert "member, staff" in decision.denied[0].reason


@pytest.mark.parametrize(
    ("claims", "granted"),
    [
        ({"roles": "member"}, ("chat:a",)),
        ({"roles": ["guest"]}, ()),
        ({"roles": [1, None, "member"]}, ("chat:a",)),
        ({"roles": {"member": True}}, ()),
        ({}, ()),
    ],
)
def test_roles_are_strings_of_the_claim(
    claims: Mapping[str, object], granted: tuple[str, ...]
) -> None:
    """A single string is one role; non-strings and other shapes count as no role."""
    assert RoleAuthorizer(ROLES).authorize(principal(claims), ["chat:a"]).granted == granted


def test_the_roles_claim_is_a_dotted_path() -> None:
    authorizer = RoleAuthorizer(ROLES, roles_claim="realm_access.roles")
    claims = {"realm_access": {"roles": ["member"]}, "roles": ["staff"]}

    decision = authorizer.authorize(principal(claims), ["chat:a", "staff:x"])

    assert decision.granted == ("chat:a",)
    assert "member" in decision.denied[0].reason


def test_no_role_is_denied_with_a_reason_naming_the_claim() -> None:
    decision = RoleAuthorizer(ROLES, "groups").authorize(principal({}), ["chat:a"])

    assert decision.granted == ()
    assert "'groups'" in decision.denied[0].reason


def test_a_glob_matches_the_whole_name() -> None:
    """``chat:*`` does not grant ``chatter:x`` nor ``xchat:a``."""
    decision = RoleAuthorizer(ROLES).authorize(
        principal({"roles": ["member"]}), ["chatter:x", "xchat:a", "chat:a.b"]
    )

    assert decision.granted == ("chat:a.b",)


def test_allow_all_and_deny_all() -> None:
    assert ALLOW_ALL.authorize(principal({}), ["a", "b"]).granted == ("a", "b")
    denied = DENY_ALL.authorize(principal({}), ["a"])
    assert denied.granted == ()
    assert denied.denied[0].channel == "a"


async def test_delegation_is_refused_by_default_and_allowed_by_list() -> None:
    service = Principal("svc")
    admin = Principal("ops", admin=True)

    with pytest.raises(DelegationRefused):
        await DenyDelegation().check(service, "alice")
    await AllowDelegation(["svc"]).check(service, "alice")
    with pytest.raises(DelegationRefused):
        await AllowDelegation(["other"]).check(service, "alice")
    with pytest.raises(DelegationRefused):
        await AllowDelegation().check(admin, "alice")
    await AllowDelegation(admins=True).check(admin, "alice")


async def test_a_jwt_authenticator_reads_the_user_claim() -> None:
    async def verify(bearer: str) -> Mapping[str, object]:
        if bearer != "good":
            raise ValueError("bad signature")
        return {"sub": "id-1", "preferred_username": "alice", "groups": ["ops"]}

    def is_ops(claims: Mapping[str, object]) -> bool:
        groups = claims.get("groups")
        return isinstance(groups, list) and "ops" in groups

    by_name = JWTBearerAuthenticator(verify, user_claim="preferred_username", admin=is_ops)

    found = await by_name.authenticate("good")
    assert (found.user_id, found.admin, found.claims["sub"]) == ("alice", True, "id-1")
    with pytest.raises(Unauthenticated, match="bad signature"):
        await by_name.authenticate("bad")
    with pytest.raises(Unauthenticated, match="'email'"):
        await JWTBearerAuthenticator(verify, user_claim="email").authenticate("good")


async def test_a_chain_takes_the_first_that_accepts_and_prefers_expired() -> None:
    """The first authenticator that returns wins; when all refuse, an expired refusal
    is the one raised, else the first."""

    class Refuse:
        def __init__(self, expired: bool = False) -> None:
            self.expired = expired

        async def authenticate(self, bearer: str) -> Principal:
            raise Unauthenticated(f"refused expired={self.expired}", expired=self.expired)

    class Accept:
        async def authenticate(self, bearer: str) -> Principal:
            return Principal(bearer)

    assert (await AuthenticatorChain([Refuse(), Accept()]).authenticate("bob")).user_id == "bob"
    with pytest.raises(Unauthenticated) as caught:
        await AuthenticatorChain([Refuse(), Refuse(expired=True)]).authenticate("x")
    assert caught.value.code == "PARSEC_AUTH_EXPIRED"
    with pytest.raises(Unauthenticated, match="expired=False"):
        await AuthenticatorChain([Refuse(), Refuse()]).authenticate("x")
    with pytest.raises(ValueError, match="at least one"):
        AuthenticatorChain([])


# -- configuration ----------------------------------------------------------------------


def load(tmp_path: Path, text: str) -> TokenBrokerOptions:
    path = tmp_path / "parsec.toml"
    path.write_text(text)
    return load_options(path, env={}).token_broker


def test_the_contract_table_loads(tmp_path: Path) -> None:
    broker = load(
        tmp_path,
        '[token_broker]\nenabled = true\nroles_claim = "realm_access.roles"\n'
        'default_ttl = "10m"\nmax_ttl = 7200\ndelegators = ["svc"]\nprefix = "/auth"\n'
        '[[token_broker.roles]]\nname = "member"\npatterns = ["chat:*"]\n',
    )

    assert broker.enabled is True
    assert broker.roles == [TokenBrokerRole("member", ("chat:*",))]
    assert (broker.default_ttl, broker.max_ttl) == (600.0, 7200.0)
    assert (broker.delegators, broker.prefix) == (["svc"], "/auth")


@pytest.mark.parametrize(
    ("text", "key", "code"),
    [
        ("[token_broker]\nenabeld = true\n", "token_broker.enabeld", "unknown_key"),
        ('[token_broker]\nenabled = "yes"\n', "token_broker.enabled", "wrong_type"),
        ("token_broker = 3\n", "token_broker", "wrong_type"),
        ("[token_broker]\nroles_claim = 1\n", "token_broker.roles_claim", "wrong_type"),
        ('[token_broker]\nroles_claim = " "\n', "token_broker.roles_claim", "invalid_value"),
        ("[token_broker]\ndefault_ttl = 0\n", "token_broker.default_ttl", "out_of_range"),
        ('[token_broker]\nmax_ttl = "soon"\n', "token_broker.max_ttl", "bad_duration"),
        ("[token_broker]\nmax_channels = 0\n", "token_broker.max_channels", "out_of_range"),
        ('[token_broker]\nprefix = "parsec"\n', "token_broker.prefix", "invalid_value"),
        ('[token_broker]\nprefix = "/"\n', "token_broker.prefix", "invalid_value"),
        ("[token_broker]\nroles = 1\n", "token_broker.roles", "wrong_type"),
        (
            '[[token_broker.roles]]\nname = "a"\npatterns = "chat:*"\n',
            "token_broker.roles[0].patterns",
            "wrong_type",
        ),
        ('[[token_broker.roles]]\nname = "a"\n', "token_broker.roles[0].patterns", "missing_key"),
        (
            '[[token_broker.roles]]\nname = "a"\npatterns = []\ncolour = 1\n',
            "token_broker.roles[0].colour",
            "unknown_key",
        ),
        (
            '[[token_broker.roles]]\nname = "a"\npatterns = []\n'
            '[[token_broker.roles]]\nname = "a"\npatterns = []\n',
            "token_broker.roles[1].name",
            "duplicate",
        ),
    ],
)
def test_bad_token_broker_tables_name_the_key(
    tmp_path: Path, text: str, key: str, code: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)

    assert (caught.value.key, caught.value.code) == (key, code)
