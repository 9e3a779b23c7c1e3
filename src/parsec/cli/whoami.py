"""``parsec whoami``: who the bearer is, and the org it acts in (``GET /api/v1/me``).

:func:`org_slug` is how the accounts commands find the org to act in when ``--org`` is
not given: the caller's default org (a user's personal org, an API key's own).
"""

from __future__ import annotations

from typing import Any, Final

from parsec.cli._accounts import ApiToken, OrgOption, accounts_client
from parsec.cli._common import DEFAULT_SERVER, JsonFlag, ServerUrl, emit, print_fields

__all__ = ["whoami"]

KIND: Final = "parsec.whoami"


def whoami(
    server: ServerUrl = DEFAULT_SERVER,
    token: ApiToken = None,
    org: OrgOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Show who you are (a user or an API key) and the organisation you act in."""
    with accounts_client(server, token) as api:
        me: dict[str, Any] = api.get("/me", params={"org": org or ""})
    emit(as_json, KIND, me, lambda: print_fields(_fields(me)))


def _fields(me: dict[str, Any]) -> list[tuple[str, object]]:
    org = me["org"]
    fields: list[tuple[str, object]] = [("kind", me["kind"])]
    if me["user"] is not None:
        user = me["user"]
        fields += [
            ("user", user["username"]),
            ("name", user["name"] or "-"),
            ("email", user["email"] or "-"),
        ]
    if me["api_key"] is not None:
        key = me["api_key"]
        fields += [
            ("api key", f"{key['name']} ({key['prefix']})"),
            ("id", key["id"]),
            ("scopes", " ".join(key["scopes"]) or "-"),
        ]
    fields += [("org", org["slug"]), ("role", org["role"] or "-")]
    return fields
