"""ParsecService's out-of-band methods over HTTP: PublishOrSink, DlqList, DlqCount,
DlqDiscard and DlqReplay, with a real email sink talking to an aiosmtpd server."""

from __future__ import annotations

import asyncio
import base64
import email.policy
import json
import re
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
import pytest_asyncio
from aiosmtpd.smtp import SMTP, Envelope, Session

from parsec import AuthOptions, Options, Parsec
from parsec.auth.scopes import Scope
from parsec.sinks import EmailSink, RetryPolicy, SinkRegistry

from .twirp import PREFIX, Api, assert_twirp_error, b64json

LOBBY: Final = "public:app.lobby"
ANA: Final = {"address": "ana@example.test"}
REFUSAL: Final = "550 5.1.1 mailbox unavailable"
RFC3339_FRACTION: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")
DLQ_METHODS: Final = ("DlqList", "DlqCount", "DlqDiscard", "DlqReplay")


class Mailbox:
    """An aiosmtpd handler refusing with ``refuse`` while it is set, else accepting."""

    def __init__(self) -> None:
        self.refuse: str | None = None
        self.received: asyncio.Queue[EmailMessage] = asyncio.Queue()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse is not None:
            return self.refuse
        assert isinstance(envelope.content, bytes)
        parsed = BytesParser(policy=email.policy.default).parsebytes(envelope.content)
        assert isinstance(parsed, EmailMessage)
        self.received.put_nowait(parsed)
        return "250 OK"

    async def next_message(self) -> EmailMessage:
        """The next accepted message; fails the test when none arrives in time."""
        return await asyncio.wait_for(self.received.get(), 10)


@pytest.fixture
def mailbox() -> Mailbox:
    """A scriptable SMTP handler (accepts by default)."""
    return Mailbox()


@pytest_asyncio.fixture
async def parsec(tmp_path: Path, mailbox: Mailbox) -> AsyncIterator[Parsec]:
    """A started Parsec with the email sink ``mail`` (two attempts, no backoff) sending to
    an aiosmtpd server on loopback."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(mailbox), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sink = EmailSink("mail", host="127.0.0.1", port=port, sender="parsec@example.test")
    options = Options(
        auth=AuthOptions(state_dir=tmp_path / "state"),
        sinks=SinkRegistry([sink]),
        sink_retry=RetryPolicy(max_attempts=2, base_backoff=0, max_backoff=0, jitter=0),
    )
    try:
        async with Parsec(options) as instance:
            yield instance
    finally:
        server.close()
        await server.wait_closed()


def request(**fields: Any) -> dict[str, Any]:
    """A PublishOrSink body to LOBBY for ANA through ``mail``, with ``fields`` replaced."""
    body: dict[str, Any] = {
        "name": LOBBY,
        "data": b64json({"ready": True}),
        "sink": "mail",
        "recipient": ANA,
        "message": {"subject": "Ready", "body": "report.pdf", "metadata": {"job": "7"}},
        "wait": True,
    }
    body.update(fields)
    return body


async def dead_letter(api: Api, mailbox: Mailbox, subject: str = "Ready") -> str:
    """Make the SMTP server refuse one PublishOrSink; returns the new dead letter's id."""
    mailbox.refuse = REFUSAL
    message = {"subject": subject, "body": "b", "metadata": {}}
    reply = await api.ok("PublishOrSink", request(message=message))
    assert reply["delivered"] is False
    dlq_id: str = reply["dlq_id"]
    return dlq_id


# -- PublishOrSink ------------------------------------------------------------------------


async def test_publish_or_sink_emails_when_nobody_listens(api: Api, mailbox: Mailbox) -> None:
    """Waiting, the reply says the message was sinked and delivered; the email arrived."""
    reply = await api.ok("PublishOrSink", request())

    assert reply == {
        "sinked": True,
        "offset": "0",
        "epoch": "",
        "queued": False,
        "delivered": True,
        "attempts": 1,
        "dlq_id": "",
        "last_error": "",
    }
    mail = await mailbox.next_message()
    assert (mail["To"], mail["Subject"]) == ("ana@example.test", "Ready")
    assert mail.get_content().strip() == "report.pdf"


async def test_publish_or_sink_queues_unless_asked_to_wait(api: Api, mailbox: Mailbox) -> None:
    """``wait`` absent means false (protobuf's default): queued, and delivered later."""
    body = request()
    del body["wait"]

    reply = await api.ok("PublishOrSink", body)

    assert (reply["sinked"], reply["queued"], reply["delivered"]) == (True, True, False)
    assert (await mailbox.next_message())["Subject"] == "Ready"


async def test_publish_or_sink_accepts_a_minimal_body(api: Api, mailbox: Mailbox) -> None:
    """Name, data, sink and the recipient suffice: an absent message is an empty one."""
    body = {"name": LOBBY, "data": b64json(1), "sink": "mail", "recipient": ANA, "wait": True}

    reply = await api.ok("PublishOrSink", body)

    assert reply["delivered"] is True
    assert (await mailbox.next_message())["Subject"] == ""


async def test_publish_or_sink_failure_lands_in_the_dlq(api: Api, mailbox: Mailbox) -> None:
    """A refusing SMTP server: the reply carries the dead letter's id and the error."""
    mailbox.refuse = REFUSAL

    reply = await api.ok("PublishOrSink", request())

    assert (reply["sinked"], reply["delivered"], reply["attempts"]) == (True, False, 1)
    assert "550" in reply["last_error"]
    assert re.fullmatch(r"[0-9a-f]{16}", reply["dlq_id"])


@pytest.mark.parametrize(
    ("fields", "status", "twirp", "code"),
    [
        ({"sink": "sms"}, 500, "internal", "PARSEC_SINK_CONFIG_INVALID"),
        ({"sink": ""}, 400, "invalid_argument", "PARSEC_INVALID_ARGUMENT"),
        ({"recipient": {"address": "nobody"}}, 400, "invalid_argument", "PARSEC_INVALID_ARGUMENT"),
        ({"recipient": None}, 400, "invalid_argument", "PARSEC_INVALID_ARGUMENT"),
        ({"data": "not base64!"}, 400, "invalid_argument", "PARSEC_INVALID_ARGUMENT"),
        (
            {"data": base64.b64encode(b"{oops").decode()},
            400,
            "invalid_argument",
            "PARSEC_INVALID_ARGUMENT",
        ),
        ({"name": "Public:App"}, 400, "invalid_argument", "PARSEC_CHANNEL_INVALID"),
        ({"wait": "yes"}, 400, "invalid_argument", "PARSEC_INVALID_ARGUMENT"),
        ({"message": {"metadata": {"n": 1}}}, 400, "invalid_argument", "PARSEC_INVALID_ARGUMENT"),
    ],
)
async def test_publish_or_sink_bad_input_gets_its_code(
    api: Api, mailbox: Mailbox, fields: dict[str, Any], status: int, twirp: str, code: str
) -> None:
    """Each bad field is refused with its Twirp error and PARSEC_* code; nothing is sent."""
    response = await api.call("PublishOrSink", request(**fields))

    assert_twirp_error(response, status, twirp, code)
    assert mailbox.received.empty()


async def test_publish_or_sink_needs_publish_on_the_channel(parsec: Parsec, api: Api) -> None:
    """A token that may publish only elsewhere, or only manage here, is refused with 403."""
    elsewhere = parsec.issue_mgmt("t", scopes=[Scope("public:other.**", ("publish",))]).token
    manage = parsec.issue_mgmt("t", scopes=[Scope("public:app.**", ("manage",))]).token
    allowed = parsec.issue_mgmt("t", scopes=[Scope("public:app.**", ("publish",))]).token

    for token in (elsewhere, manage):
        response = await api.call("PublishOrSink", request(), token=token)
        assert_twirp_error(response, 403, "permission_denied", "PARSEC_AUTH_DENIED")
    assert (await api.ok("PublishOrSink", request(), token=allowed))["sinked"] is True


# -- the dead-letter queue ----------------------------------------------------------------


async def test_dlq_list_shows_every_field(api: Api, mailbox: Mailbox) -> None:
    """DlqList items carry the sink, a precise RFC 3339 time, the recipient's JSON in
    base64, the message, the attempts and the last error."""
    dlq_id = await dead_letter(api, mailbox)

    [item] = (await api.ok("DlqList", {"sink": "mail"}))["items"]

    assert item["id"] == dlq_id
    assert item["sink"] == "mail"
    assert RFC3339_FRACTION.fullmatch(item["at"])
    assert json.loads(base64.b64decode(item["recipient"])) == ANA
    assert (item["subject"], item["body"], item["metadata"]) == ("Ready", "b", {})
    assert item["attempts"] == 1
    assert "550" in item["last_error"]


async def test_dlq_list_is_newest_first_filtered_and_limited(api: Api, mailbox: Mailbox) -> None:
    """Newest first; another sink's list is empty; limit caps; 0 and absent mean 50."""
    for subject in ("a", "b", "c"):
        await dead_letter(api, mailbox, subject)

    def subjects(reply: dict[str, Any]) -> list[str]:
        return [item["subject"] for item in reply["items"]]

    assert subjects(await api.ok("DlqList", {"sink": "mail", "limit": 2})) == ["c", "b"]
    assert subjects(await api.ok("DlqList", {"sink": "mail", "limit": "0"})) == ["c", "b", "a"]
    assert subjects(await api.ok("DlqList")) == ["c", "b", "a"]
    assert subjects(await api.ok("DlqList", {"sink": "slack"})) == []


@pytest.mark.parametrize("limit", [-1, 1001, 2.5, True, "many"])
async def test_dlq_list_refuses_a_bad_limit(api: Api, limit: object) -> None:
    """A limit outside 0..1000 or not an integer is invalid_argument."""
    response = await api.call("DlqList", {"limit": limit})

    assert_twirp_error(response, 400, "invalid_argument", "PARSEC_INVALID_ARGUMENT")
    assert "limit" in response.json()["msg"]


async def test_dlq_count_is_an_int64_string(api: Api, mailbox: Mailbox) -> None:
    """DlqCount answers per sink and for every sink (empty ``sink``)."""
    await dead_letter(api, mailbox)
    await dead_letter(api, mailbox)

    assert await api.ok("DlqCount", {"sink": "mail"}) == {"count": "2"}
    assert await api.ok("DlqCount") == {"count": "2"}
    assert await api.ok("DlqCount", {"sink": "slack"}) == {"count": "0"}


async def test_dlq_discard_removes_the_item_once(api: Api, mailbox: Mailbox) -> None:
    """Discard answers {} and the item is gone; discarding it again is not_found."""
    dlq_id = await dead_letter(api, mailbox)

    assert await api.ok("DlqDiscard", {"id": dlq_id}) == {}
    assert await api.ok("DlqCount") == {"count": "0"}
    again = await api.call("DlqDiscard", {"id": dlq_id})
    assert_twirp_error(again, 404, "not_found", "PARSEC_SINK_DLQ_NOT_FOUND")


async def test_dlq_replay_that_fails_again_lands_a_new_item(api: Api, mailbox: Mailbox) -> None:
    """Replay with the SMTP server still refusing: a new item; the original stays."""
    dlq_id = await dead_letter(api, mailbox)

    reply = await api.ok("DlqReplay", {"id": dlq_id})

    assert reply["delivered"] is False
    assert reply["dlq_id"] not in ("", dlq_id)
    assert "550" in reply["last_error"]
    ids = [item["id"] for item in (await api.ok("DlqList"))["items"]]
    assert ids == [reply["dlq_id"], dlq_id]


async def test_dlq_replay_delivers_once_the_server_accepts(api: Api, mailbox: Mailbox) -> None:
    """Replay once the SMTP server accepts: delivered, and the email is the original one."""
    dlq_id = await dead_letter(api, mailbox, "Ready again")
    mailbox.refuse = None

    reply = await api.ok("DlqReplay", {"id": dlq_id})

    assert reply == {"delivered": True, "attempts": 1, "dlq_id": "", "last_error": ""}
    mail = await mailbox.next_message()
    assert (mail["To"], mail["Subject"]) == ("ana@example.test", "Ready again")
    assert await api.ok("DlqCount") == {"count": "1"}


@pytest.mark.parametrize("method", ["DlqReplay", "DlqDiscard"])
async def test_an_unknown_dead_letter_is_not_found(api: Api, method: str) -> None:
    """Replay or discard of an id the queue does not hold is 404 not_found."""
    response = await api.call(method, {"id": "0123456789abcdef"})

    assert_twirp_error(response, 404, "not_found", "PARSEC_SINK_DLQ_NOT_FOUND")


@pytest.mark.parametrize("method", ["DlqReplay", "DlqDiscard"])
async def test_a_dead_letter_method_needs_an_id(api: Api, method: str) -> None:
    """An empty or absent id is invalid_argument naming the field."""
    for body in ({}, {"id": ""}):
        response = await api.call(method, body)
        assert_twirp_error(response, 400, "invalid_argument", "PARSEC_INVALID_ARGUMENT")
        assert "id" in response.json()["msg"]


@pytest.mark.parametrize("method", DLQ_METHODS)
async def test_dead_letter_methods_need_an_operator(parsec: Parsec, api: Api, method: str) -> None:
    """A management token that is not an operator's gets 403 on every DLQ method."""
    team = parsec.issue_mgmt("team", scopes=[Scope("public:**", ("manage", "publish"))]).token

    response = await api.call(method, {"id": "0123456789abcdef"}, token=team)

    assert_twirp_error(response, 403, "permission_denied", "PARSEC_AUTH_DENIED")


@pytest.mark.parametrize("method", [*DLQ_METHODS, "PublishOrSink"])
async def test_out_of_band_methods_need_a_bearer(api: Api, method: str) -> None:
    """Without a management bearer every new method is 401 unauthenticated."""
    response = await api.call(method, request(id="x"), token=None)

    assert_twirp_error(response, 401, "unauthenticated", "PARSEC_AUTH_MISSING")


# -- documents ----------------------------------------------------------------------------


async def test_the_manifest_lists_the_sinks(api: Api) -> None:
    """The Manifest payload names the registered sinks, the DLQ backend and retry policy."""
    reply = await api.ok("Manifest", token=None)
    payload = json.loads(base64.b64decode(reply["payload"]))["payload"]

    assert payload["sinks"] == ["mail"]
    assert payload["dlq_backend"] == "memory"
    assert payload["sink_retry"] == {"max_attempts": 2, "base_backoff": "0s", "max_backoff": "0s"}


async def test_openapi_describes_the_out_of_band_methods(http: httpx.AsyncClient) -> None:
    """Each new method is in /openapi.json behind the bearer, with its documented shapes."""
    document = (await http.get("/openapi.json")).json()

    for method in [*DLQ_METHODS, "PublishOrSink"]:
        operation = document["paths"][PREFIX + method]["post"]
        assert operation["operationId"] == method
        assert "security" in operation
    schemas = document["components"]["schemas"]
    assert schemas["DlqItem"]["properties"]["recipient"]["format"] == "byte"
    assert schemas["DlqCountResponse"]["properties"]["count"]["type"] == "string"
