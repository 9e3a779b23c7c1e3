"""The messages of ``parsec.ParsecService`` as pydantic models, in Twirp's JSON mapping.

Wire rules (protobuf JSON, as Twirp v8 speaks it):

* Requests accept every field under its snake_case name and its lowerCamelCase name
  (``ttl_seconds`` or ``ttlSeconds``); unknown fields are ignored.
* Responses use snake_case and carry every field, defaults included.
* ``int64`` / ``uint64`` fields are JSON strings in responses (``"offset": "3"``) and an
  integer or a decimal string in requests; ``bytes`` fields are base64 strings
  (:mod:`parsec.api.protobuf_json`).
* Timestamps in :class:`ChannelSummary` and :class:`KeySummary` are RFC 3339 UTC strings;
  :class:`DlqItem`'s ``at`` keeps the fraction of a second (``…T00:00:00.25Z``).
* ``PublishOrSinkRequest.recipient`` is a JSON value in place (the sink's recipient, such
  as ``{"address": "ana@example.com"}``), not base64; ``DlqItem.recipient`` is ``bytes``.

A request that breaks these rules fails validation; the service turns that into
``invalid_argument`` / ``PARSEC_INVALID_ARGUMENT``.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import (
    AliasChoices,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel

from parsec.api.protobuf_json import Base64Bytes, Int64, Uint64, range_schema
from parsec.auth.scopes import VERBS
from parsec.channels.names import NAME_REGEX, PRIVATE_NAME_REGEX, PUBLIC_NAME_REGEX
from parsec.channels.patterns import PATTERN_REGEX

__all__ = [
    "DLQ_LIST_MAX",
    "Base64Bytes",
    "ChannelRef",
    "ChannelResponse",
    "ChannelStateName",
    "ChannelSummary",
    "CreatePrivateRequest",
    "Credentials",
    "DescriptorEnvelope",
    "DlqCountRequest",
    "DlqCountResponse",
    "DlqItem",
    "DlqListRequest",
    "DlqListResponse",
    "DlqRef",
    "DlqReplayResponse",
    "Empty",
    "GenerateKeyRequest",
    "Int64",
    "IssueMgmtRequest",
    "IssueMgmtResponse",
    "JSONPayload",
    "JSONWebKeySet",
    "KeyRef",
    "KeyRole",
    "KeySummary",
    "ListChannelsResponse",
    "ListKeysResponse",
    "MessageSpec",
    "OpenPublicRequest",
    "PresenceResponse",
    "PublishOrSinkRequest",
    "PublishOrSinkResponse",
    "PublishRequest",
    "PublishResponse",
    "RefreshTokenRequest",
    "RefreshTokenResponse",
    "RevokeTokenRequest",
    "RevokeUserRequest",
    "ScopeSpec",
    "TwirpError",
    "Uint64",
]

DLQ_LIST_MAX: Final = 1000
"""The most dead letters one DlqList returns."""

ChannelStateName = Literal["open", "closed", "deleted"]
KeyRole = Literal["active", "verify-only", "retired"]
Timestamp = Annotated[str, Field(description="RFC 3339 UTC, e.g. 2026-01-01T00:00:00Z")]
_SECONDS_MAX: Final = 2**31 - 1
Seconds = Annotated[
    Int64,
    Field(ge=0, le=_SECONDS_MAX, description="seconds; 0 means the server's default"),
    WithJsonSchema(range_schema("int64", _SECONDS_MAX), mode="validation"),
]
Required = Annotated[str, Field(min_length=1)]


# The patterns of the channel name fields only document the grammar: the service checks
# names itself, so that a bad one is PARSEC_CHANNEL_INVALID with a message saying what is
# wrong (parsec.channels.names.require_name), not a generic validation error.
AnyName = Annotated[
    str,
    Field(
        description="a channel name: public:<app>.<domain>[.<id>][.<topic>] or "
        "private:<app>.<domain>.<id>[.<topic>]",
        json_schema_extra={"pattern": NAME_REGEX},
    ),
]
PublicName = Annotated[
    str,
    Field(
        description="a public channel name: public:<app>.<domain>[.<id>][.<topic>]",
        json_schema_extra={"pattern": PUBLIC_NAME_REGEX},
    ),
]
PrivateName = Annotated[
    str,
    Field(
        description="a private channel name: private:<app>.<domain>.<id>[.<topic>]",
        json_schema_extra={"pattern": PRIVATE_NAME_REGEX},
    ),
]


class Request(BaseModel):
    """A request message: snake_case or lowerCamelCase names, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(
            validation_alias=lambda name: AliasChoices(name, to_camel(name))
        ),
        extra="ignore",
        frozen=True,
    )


class Response(BaseModel):
    """A response message: snake_case names, every field emitted."""

    model_config = ConfigDict(frozen=True)


# -- requests ---------------------------------------------------------------------------------


class Empty(Request):
    """No fields (``google.protobuf.Empty``); also the reply of methods that return nothing."""


class ChannelRef(Request):
    name: AnyName


class OpenPublicRequest(Request):
    name: PublicName
    ttl_seconds: Seconds = 0


class ScopeSpec(Request):
    """One scope of a token: ``verbs`` on the channels ``pattern`` covers, or withheld from
    them when ``deny``."""

    pattern: Annotated[
        str,
        Field(
            description="public:… or private:… segments: literals, '*' (one component), "
            "'**' (one or more, last only)",
            json_schema_extra={"pattern": PATTERN_REGEX},
        ),
    ]
    verbs: Annotated[
        list[str], Field(json_schema_extra={"items": {"enum": list(VERBS)}, "minItems": 1})
    ]
    deny: StrictBool = False


class CreatePrivateRequest(Request):
    name: PrivateName
    subject: Required
    ttl_seconds: Seconds = 0
    scopes: list[ScopeSpec] = []


class PublishRequest(Request):
    name: AnyName
    data: Annotated[Base64Bytes, Field(description="base64 of the JSON payload's bytes")]


class RefreshTokenRequest(Request):
    refresh_token: Required


class IssueMgmtRequest(Request):
    subject: str = ""
    ttl_seconds: Seconds = 0
    scopes: list[ScopeSpec] = []


class GenerateKeyRequest(Request):
    alg: str = ""


class KeyRef(Request):
    id: Required


class RevokeTokenRequest(Request):
    token_id: Required
    user_id: str = ""
    reason: str = ""


class RevokeUserRequest(Request):
    user_id: Required
    reason: str = ""


class MessageSpec(Request):
    """What a sink delivers: an email's subject and body, a Slack text, a webhook's JSON."""

    subject: str = ""
    body: str = ""
    metadata: dict[str, str] = {}


class PublishOrSinkRequest(Request):
    name: AnyName
    data: Annotated[Base64Bytes, Field(description="base64 of the JSON payload's bytes")]
    sink: Required
    recipient: Annotated[
        Any,
        Field(
            description='the sink\'s recipient as JSON (not base64), e.g. {"address": '
            '"ana@example.com"} for an email sink; null or absent for a Slack sink'
        ),
    ] = None
    message: MessageSpec = MessageSpec()
    wait: Annotated[
        StrictBool,
        Field(description="wait for the delivery's outcome; false (the default) queues it"),
    ] = False


class DlqListRequest(Request):
    sink: Annotated[str, Field(description="one sink's dead letters; empty for every sink")] = ""
    limit: Annotated[
        Int64,
        Field(ge=0, le=DLQ_LIST_MAX, description="at most 1000; 0 means 50"),
        WithJsonSchema(range_schema("int64", DLQ_LIST_MAX), mode="validation"),
    ] = 0


class DlqCountRequest(Request):
    sink: Annotated[str, Field(description="one sink's dead letters; empty for every sink")] = ""


class DlqRef(Request):
    id: Required


# -- responses --------------------------------------------------------------------------------


class JSONPayload(Response):
    payload: Annotated[Base64Bytes, Field(description="base64 of a JSON document")]


class ChannelSummary(Response):
    name: str
    state: ChannelStateName
    ttl_seconds: int
    created_at: Timestamp
    last_active: Timestamp


class ChannelResponse(Response):
    channel: ChannelSummary


class ListChannelsResponse(Response):
    channels: list[ChannelSummary]


class Credentials(Response):
    name: str
    access_token: str
    refresh_token: str
    access_expires_unix: Int64
    refresh_expires_unix: Int64


class PresenceResponse(Response):
    subscribers: int


class PublishResponse(Response):
    offset: Uint64
    epoch: str


class RefreshTokenResponse(Response):
    access_token: str
    access_expires_unix: Int64
    refresh_token: str
    refresh_expires_unix: Int64
    rotated: bool


class IssueMgmtResponse(Response):
    mgmt_token: str
    expires_unix: Int64
    signed_by_key_id: str


class KeySummary(Response):
    id: str
    role: KeyRole
    created_at: Timestamp
    retired_at: Annotated[str, Field(description="RFC 3339 UTC; empty when not retired")]
    alg: str


class ListKeysResponse(Response):
    active_key_id: str
    keys: list[KeySummary]


class PublishOrSinkResponse(Response):
    """``sinked`` false: published at ``offset`` / ``epoch``. ``sinked`` true: ``queued``
    for background delivery, or (when the request waited) the delivery's outcome:
    ``delivered`` after ``attempts`` attempts, or dead-lettered as ``dlq_id`` because of
    ``last_error``."""

    sinked: bool
    offset: Uint64
    epoch: str
    queued: bool
    delivered: bool
    attempts: int
    dlq_id: str
    last_error: str


class DlqReplayResponse(Response):
    """How the replay ended: ``delivered`` after ``attempts`` attempts, or dead-lettered
    again as the new item ``dlq_id`` because of ``last_error``. The replayed item stays."""

    delivered: bool
    attempts: int
    dlq_id: str
    last_error: str


class DlqItem(Response):
    id: str
    sink: str
    at: Annotated[str, Field(description="RFC 3339 UTC with the fraction of a second")]
    recipient: Annotated[Base64Bytes, Field(description="base64 of the recipient's JSON")]
    subject: str
    body: str
    metadata: dict[str, str]
    attempts: int
    last_error: str


class DlqListResponse(Response):
    items: list[DlqItem]


class DlqCountResponse(Response):
    count: Int64


# -- documents served outside the service (described for the OpenAPI document) ----------------


class DescriptorEnvelope(Response):
    """``GET /manifest``: a descriptor envelope (parsec-reference.md §5)."""

    format_version: str
    kind: str
    generated_at: Timestamp
    payload: dict[str, Any]


class JSONWebKeySet(Response):
    """``GET /parsec/jwks.json``: the public keys of the ring's asymmetric keys (RFC 7517)."""

    keys: list[dict[str, Any]]


class TwirpError(Response):
    """Every error reply: the Twirp error code, a message for people, and
    ``meta.parsec_code``, the stable ``PARSEC_*`` code (absent for ``bad_route``)."""

    code: str
    msg: str
    meta: dict[str, str]
