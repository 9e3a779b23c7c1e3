"""Reading the claims of an identity provider's token: values at dotted paths
(``realm_access.roles``, ``groups``), as the token broker's roles and the OIDC bridge's
groups are configured."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["claim_at", "strings_at"]


def claim_at(claims: Mapping[str, object], path: str) -> object:
    """The value at the dotted ``path`` (``realm_access.roles``) of ``claims``; None when
    a step is missing or not a mapping."""
    node: object = claims
    for step in path.split("."):
        if not isinstance(node, Mapping) or step not in node:
            return None
        node = node[step]
    return node


def strings_at(claims: Mapping[str, object], path: str) -> tuple[str, ...]:
    """The strings of the claim at ``path``: a single string counts as one, the string
    items of a list as many, anything else (or nothing) as none."""
    value = claim_at(claims, path)
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(item for item in value if isinstance(item, str))
    return ()
