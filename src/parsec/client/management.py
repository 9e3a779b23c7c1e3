"""A typed, synchronous client of Parsec's management API (``parsec.ParsecService``).

::

    with ManagementClient("http://127.0.0.1:8000", token) as parsec:
        channel = parsec.open_public("public:app.lobby", ttl_seconds=1800)
        ack = parsec.publish("public:app.lobby", {"text": "hi"})

Each RPC is ``POST {server}/twirp/parsec.ParsecService/<Method>`` with a snake_case JSON
body, and ``Authorization: Bearer <token>`` on every method but ``Manifest`` and
``RefreshToken``. Replies are decoded into frozen structs: int64 fields arrive as JSON
strings and come out as ``int``, ``bytes`` fields arrive base64-encoded, and a field the
server leaves out takes its protobuf zero value.

What it raises::

    ManagementError            the server answered with a Twirp error: parsec_code
                               (PARSEC_*), twirp_code, HTTP status and message
    ManagementTransportError   the server could not be reached, or what answered is
                               not the management API
    ValueError                 a server URL that is not http(s)://host[:port][/prefix]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

import httpx
import msgspec

if TYPE_CHECKING:
    from parsec.auth.scopes import Scope

__all__ = [
    "ChannelSummary",
    "Credentials",
    "DeadLetter",
    "Delivery",
    "KeyList",
    "KeySummary",
    "ManagementClient",
    "ManagementError",
    "ManagementTransportError",
    "MgmtToken",
    "PublishAck",
    "PublishOrSinkAck",
    "RefreshedTokens",
]

SERVICE_PATH: Final = "/twirp/parsec.ParsecService/"
MANIFEST_PATH: Final = "/manifest"
MANIFEST_KIND: Final = "parsec.manifest"
DEFAULT_TIMEOUT: Final = 10.0

_PARSEC_CODE_OF_TWIRP: Final[dict[str, str]] = {
    "invalid_argument": "PARSEC_INVALID_ARGUMENT",
    "malformed": "PARSEC_INVALID_ARGUMENT",
    "not_found": "PARSEC_CHANNEL_NOT_FOUND",
    "already_exists": "PARSEC_CHANNEL_EXISTS",
    "failed_precondition": "PARSEC_CHANNEL_CLOSED",
    "permission_denied": "PARSEC_AUTH_DENIED",
    "unauthenticated": "PARSEC_AUTH_EXPIRED",
    "unavailable": "PARSEC_BROKER_NOT_READY",
    "resource_exhausted": "PARSEC_RATE_LIMITED",
}
"""The Go client's inverse map, for an error reply whose ``meta`` has no ``parsec_code``."""

_EXCERPT_CHARS: Final = 200

_T = TypeVar("_T")


# -- errors -----------------------------------------------------------------------------------


class ManagementError(Exception):
    """The server refused a call: a Twirp error reply with its Parsec code.

    ``parsec_code`` is the ``PARSEC_*`` code (from ``meta.parsec_code``, else inferred from
    the Twirp code as the Go client does), ``twirp_code`` the Twirp code, ``status`` the
    HTTP status and ``message`` the server's message.
    """

    def __init__(self, parsec_code: str, twirp_code: str, status: int, message: str) -> None:
        super().__init__(f"{parsec_code}: {message}")
        self.parsec_code = parsec_code
        self.twirp_code = twirp_code
        self.status = status
        self.message = message


class ManagementTransportError(Exception):
    """No usable answer: the connection failed or timed out, or the reply is not one the
    management API sends (not JSON, not a Twirp error, wrong shape). The message names
    the server and never contains the bearer token."""


# -- replies ----------------------------------------------------------------------------------


class ChannelSummary(msgspec.Struct, frozen=True):
    """A managed channel; times are RFC 3339 UTC strings."""

    name: str = ""
    state: str = ""
    ttl_seconds: int = 0
    created_at: str = ""
    last_active: str = ""


class Credentials(msgspec.Struct, frozen=True):
    """What CreatePrivate returns once: the channel's access and refresh tokens."""

    name: str = ""
    access_token: str = ""
    refresh_token: str = ""
    access_expires_unix: int = 0
    refresh_expires_unix: int = 0


class RefreshedTokens(msgspec.Struct, frozen=True):
    """What RefreshToken returns: a new access token and the next refresh token."""

    access_token: str = ""
    access_expires_unix: int = 0
    refresh_token: str = ""
    refresh_expires_unix: int = 0
    rotated: bool = False


class MgmtToken(msgspec.Struct, frozen=True):
    """A management bearer token and the key that signed it."""

    mgmt_token: str = ""
    expires_unix: int = 0
    signed_by_key_id: str = ""


class KeySummary(msgspec.Struct, frozen=True):
    """A keyring key without its secret; ``retired_at`` is ``""`` unless retired."""

    id: str = ""
    role: str = ""
    created_at: str = ""
    retired_at: str = ""
    alg: str = ""


class KeyList(msgspec.Struct, frozen=True):
    """Every key of the server's ring and which one signs."""

    active_key_id: str = ""
    keys: list[KeySummary] = msgspec.field(default_factory=list)


class PublishAck(msgspec.Struct, frozen=True):
    """Where a publication landed; ``offset`` 0 and ``epoch`` ``""`` without history."""

    offset: int = 0
    epoch: str = ""


class PublishOrSinkAck(msgspec.Struct, frozen=True):
    """What PublishOrSink did: published at ``offset`` / ``epoch`` (``sinked`` False), or
    sinked: ``queued`` for background delivery, or delivered / dead-lettered as ``dlq_id``
    when the call waited."""

    sinked: bool = False
    offset: int = 0
    epoch: str = ""
    queued: bool = False
    delivered: bool = False
    attempts: int = 0
    dlq_id: str = ""
    last_error: str = ""


class DeadLetter(msgspec.Struct, frozen=True):
    """A dead-lettered delivery; ``recipient`` is the JSON bytes of the sink's recipient
    and ``at`` an RFC 3339 UTC time with the fraction of a second."""

    id: str = ""
    sink: str = ""
    at: str = ""
    recipient: bytes = b""
    subject: str = ""
    body: str = ""
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    attempts: int = 0
    last_error: str = ""


class Delivery(msgspec.Struct, frozen=True):
    """How a replay ended: delivered, or dead-lettered again as the new item ``dlq_id``."""

    delivered: bool = False
    attempts: int = 0
    dlq_id: str = ""
    last_error: str = ""


class _DeadLetters(msgspec.Struct, frozen=True):
    items: list[DeadLetter] = msgspec.field(default_factory=list)


class _Count(msgspec.Struct, frozen=True):
    count: int = 0


class _ChannelReply(msgspec.Struct, frozen=True):
    channel: ChannelSummary = msgspec.field(default_factory=ChannelSummary)


class _ChannelList(msgspec.Struct, frozen=True):
    channels: list[ChannelSummary] = msgspec.field(default_factory=list)


class _PresenceReply(msgspec.Struct, frozen=True):
    subscribers: int = 0


class _JsonReply(msgspec.Struct, frozen=True):
    payload: bytes = b""


class _Empty(msgspec.Struct, frozen=True):
    pass


class _TwirpMeta(msgspec.Struct, frozen=True):
    parsec_code: str = ""


class _TwirpError(msgspec.Struct, frozen=True):
    code: str
    msg: str = ""
    meta: _TwirpMeta = msgspec.field(default_factory=_TwirpMeta)


# -- the client -------------------------------------------------------------------------------


class ManagementClient:
    """One connection pool to one server's management API; close it (or use ``with``).

    ``token`` is the management bearer; methods other than :meth:`manifest`,
    :meth:`fetch_manifest` and :meth:`refresh_token` send it. ``transport`` replaces the
    network (tests); closing the client closes it. Every method raises
    :class:`ManagementError` or :class:`ManagementTransportError` (module docstring).

    Raises:
        ValueError: ``server`` is not an ``http://`` or ``https://`` URL with a host.
    """

    def __init__(
        self,
        server: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.server = _base_url(server)
        self._token = token
        self._http = httpx.Client(timeout=timeout, transport=transport, trust_env=False)

    def close(self) -> None:
        """Release the connection pool; idempotent."""
        self._http.close()

    def __enter__(self) -> ManagementClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- channels ----------------------------------------------------------------------------

    def open_public(self, name: str, ttl_seconds: int | None = None) -> ChannelSummary:
        """Open (or reopen) public channel ``name``; ``ttl_seconds`` None = server default."""
        body = _fields(name=name, ttl_seconds=ttl_seconds)
        return self._call("OpenPublic", body, _ChannelReply).channel

    def create_private(
        self,
        name: str,
        subject: str,
        ttl_seconds: int | None = None,
        scopes: Sequence[Scope] = (),
    ) -> Credentials:
        """Create private channel ``name`` and mint its tokens for ``subject``."""
        body = _fields(
            name=name, subject=subject, ttl_seconds=ttl_seconds, scopes=_scopes(scopes) or None
        )
        return self._call("CreatePrivate", body, Credentials)

    def list_channels(self) -> list[ChannelSummary]:
        """The channels the token may manage, open and closed."""
        return self._call("ListChannels", {}, _ChannelList).channels

    def get_channel(self, name: str) -> ChannelSummary:
        return self._call("GetChannel", {"name": name}, _ChannelReply).channel

    def delete_channel(self, name: str) -> None:
        self._call("DeleteChannel", {"name": name}, _Empty)

    def presence(self, name: str) -> int:
        """How many clients are subscribed to ``name``."""
        return self._call("Presence", {"name": name}, _PresenceReply).subscribers

    def publish(self, name: str, data: Any) -> PublishAck:
        """Publish ``data`` (any JSON-encodable value) into ``name``.

        Raises:
            TypeError: ``data`` cannot be encoded as JSON.
        """
        encoded = msgspec.json.encode(data)
        return self._call("Publish", {"name": name, "data": encoded}, PublishAck)

    def publish_or_sink(
        self,
        name: str,
        data: Any,
        sink: str,
        recipient: Any,
        *,
        subject: str = "",
        body: str = "",
        metadata: Mapping[str, str] | None = None,
        wait: bool = True,
    ) -> PublishOrSinkAck:
        """Publish ``data`` into ``name`` if anyone listens, else hand the message to
        ``sink`` for ``recipient`` (the sink's JSON recipient); ``wait`` for the delivery's
        outcome or only queue it.

        Raises:
            TypeError: ``data`` or ``recipient`` cannot be encoded as JSON.
        """
        request = {
            "name": name,
            "data": msgspec.json.encode(data),
            "sink": sink,
            "recipient": msgspec.to_builtins(recipient),
            "message": {"subject": subject, "body": body, "metadata": dict(metadata or {})},
            "wait": wait,
        }
        return self._call("PublishOrSink", request, PublishOrSinkAck)

    # -- dead letters ------------------------------------------------------------------------

    def dlq_list(self, sink: str = "", limit: int | None = None) -> list[DeadLetter]:
        """Dead letters of ``sink`` (``""``: every sink), newest first; ``limit`` None =
        the server's default (50)."""
        body = _fields(sink=sink or None, limit=limit)
        return self._call("DlqList", body, _DeadLetters).items

    def dlq_count(self, sink: str = "") -> int:
        """How many dead letters ``sink`` (``""``: every sink) holds."""
        return self._call("DlqCount", _fields(sink=sink or None), _Count).count

    def dlq_discard(self, id: str) -> None:
        """Remove dead letter ``id`` (PARSEC_SINK_DLQ_NOT_FOUND when there is none)."""
        self._call("DlqDiscard", {"id": id}, _Empty)

    def dlq_replay(self, id: str) -> Delivery:
        """Send dead letter ``id`` again through its sink and wait for the outcome."""
        return self._call("DlqReplay", {"id": id}, Delivery)

    # -- tokens ------------------------------------------------------------------------------

    def refresh_token(self, refresh_token: str) -> RefreshedTokens:
        """Exchange ``refresh_token`` for new tokens; sends no bearer."""
        body = {"refresh_token": refresh_token}
        return self._call("RefreshToken", body, RefreshedTokens, bearer=False)

    def issue_mgmt(
        self,
        subject: str | None = None,
        ttl_seconds: int | None = None,
        scopes: Sequence[Scope] | None = None,
    ) -> MgmtToken:
        """Mint a management token; None leaves the server's defaults (operator, 24 h,
        full operator scopes)."""
        body = _fields(
            subject=subject,
            ttl_seconds=ttl_seconds,
            scopes=None if scopes is None else _scopes(scopes),
        )
        return self._call("IssueMgmt", body, MgmtToken)

    def revoke_token(self, token_id: str, user_id: str = "", reason: str = "") -> None:
        body = _fields(token_id=token_id, user_id=user_id or None, reason=reason or None)
        self._call("RevokeToken", body, _Empty)

    def revoke_user(self, user_id: str, reason: str = "") -> None:
        """Refuse every token of ``user_id`` issued until now."""
        self._call("RevokeUser", _fields(user_id=user_id, reason=reason or None), _Empty)

    # -- keys --------------------------------------------------------------------------------

    def list_keys(self) -> KeyList:
        return self._call("ListKeys", {}, KeyList)

    def generate_key(self, alg: str | None = None) -> KeySummary:
        """Add a verify-only key; ``alg`` None = the server's default (HS256)."""
        return self._call("GenerateKey", _fields(alg=alg), KeySummary)

    def promote_key(self, kid: str) -> None:
        self._call("PromoteKey", {"id": kid}, _Empty)

    def retire_key(self, kid: str) -> None:
        self._call("RetireKey", {"id": kid}, _Empty)

    def reload_keys(self) -> None:
        self._call("ReloadKeys", {}, _Empty)

    # -- manifest ----------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        """The manifest envelope, through the Manifest RPC (its base64 payload decoded);
        its ``payload`` is an object."""
        payload = self._call("Manifest", {}, _JsonReply, bearer=False).payload
        return _manifest(payload, f"{self.server}{SERVICE_PATH}Manifest")

    def fetch_manifest(self) -> dict[str, Any]:
        """The manifest envelope from ``GET /manifest``; its ``payload`` is an object."""
        url = self.server + MANIFEST_PATH
        response = self._send("GET", url, headers={})
        if response.status_code != httpx.codes.OK:
            raise _error(response, url)
        return _manifest(response.content, url)

    # -- plumbing ----------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        body: Mapping[str, object],
        reply: type[_T],
        *,
        bearer: bool = True,
    ) -> _T:
        url = f"{self.server}{SERVICE_PATH}{method}"
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if bearer and self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        response = self._send("POST", url, headers=headers, content=msgspec.json.encode(body))
        if response.status_code != httpx.codes.OK:
            raise _error(response, url)
        try:
            return msgspec.json.decode(response.content, type=reply, strict=False)
        except msgspec.DecodeError as exc:
            raise ManagementTransportError(
                f"{url} answered with a reply the management API does not send: {exc}"
            ) from None

    def _send(
        self, verb: str, url: str, *, headers: dict[str, str], content: bytes | None = None
    ) -> httpx.Response:
        try:
            return self._http.request(verb, url, headers=headers, content=content)
        except httpx.TimeoutException:
            raise ManagementTransportError(f"no answer from {self.server} in time") from None
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise ManagementTransportError(
                f"cannot reach the server at {self.server}: {reason}"
            ) from None


def _base_url(server: str) -> str:
    try:
        url = httpx.URL(server)
    except httpx.InvalidURL as exc:
        raise ValueError(f"invalid server URL {server!r}: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"the server URL must be http(s)://host[:port], got {server!r}")
    if url.query or url.fragment:
        raise ValueError(f"the server URL must not have a query or fragment, got {server!r}")
    return str(url).rstrip("/")


def _fields(**values: object) -> dict[str, object]:
    """The request body: fields whose value is None are left out (the server's default)."""
    return {name: value for name, value in values.items() if value is not None}


def _scopes(scopes: Sequence[Scope]) -> list[dict[str, object]]:
    return [
        {"pattern": scope.pattern, "verbs": list(scope.verbs), "deny": scope.deny}
        for scope in scopes
    ]


def _error(response: httpx.Response, url: str) -> Exception:
    """The exception for a non-200 reply: a ManagementError when it is a Twirp error."""
    try:
        error = msgspec.json.decode(response.content, type=_TwirpError)
    except msgspec.DecodeError:
        excerpt = response.text[:_EXCERPT_CHARS]
        return ManagementTransportError(
            f"HTTP {response.status_code} from {url}, which is not a management API "
            f"error reply: {excerpt!r}"
        )
    code = error.meta.parsec_code or _PARSEC_CODE_OF_TWIRP.get(error.code, "PARSEC_INTERNAL")
    return ManagementError(code, error.code, response.status_code, error.msg)


def _manifest(data: bytes, where: str) -> dict[str, Any]:
    """``data`` decoded as a ``parsec.manifest`` envelope with an object payload."""
    try:
        document = msgspec.json.decode(data)
    except msgspec.DecodeError:
        document = None
    if (
        not isinstance(document, dict)
        or document.get("kind") != MANIFEST_KIND
        or not isinstance(document.get("payload"), dict)
    ):
        raise ManagementTransportError(f"{where} did not answer with a manifest envelope")
    return document
