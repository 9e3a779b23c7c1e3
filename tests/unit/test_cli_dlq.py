"""``parsec publish-or-sink`` and ``parsec dlq list|count|discard|replay`` against a real
Parsec (served in a background thread) whose email sink talks to an aiosmtpd server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Final, TypeVar

import pytest
from cli_runs import invoke
from sink_harness import Mailbox, Served, email_options, serving, smtp_server, subscribed
from typer.testing import Result

from parsec.auth.scopes import Scope

_T = TypeVar("_T")

LOBBY: Final = "public:app.lobby"
ANA: Final = '{"address": "ana@example.test"}'
REFUSAL: Final = "550 5.1.1 mailbox unavailable"


pytestmark = pytest.mark.usefixtures("hermetic")


def assert_error(result: Result, code: int, *words: str) -> None:
    """The command exited ``code`` with a one-line error holding ``words``, no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    message = result.stderr.splitlines()[-1]
    assert message.startswith("parsec: error: "), result.stderr
    for word in words:
        assert word in message, message


def envelope_of(result: Result, kind: str) -> dict[str, Any]:
    """The payload of the ``kind`` descriptor envelope ``result`` printed."""
    document = json.loads(result.stdout)
    assert set(document) == {"format_version", "kind", "generated_at", "payload"}
    assert document["kind"] == kind
    payload: dict[str, Any] = document["payload"]
    return payload


@dataclass
class Live:
    """A served Parsec with the email sink ``mail``, in a background thread's loop."""

    served: Served
    mailbox: Mailbox
    loop: asyncio.AbstractEventLoop
    token: str

    def cli(self, *args: str, token: str | None = None, input: str | None = None) -> Result:
        """The CLI against this server with ``token`` (default: an operator's)."""
        env = {"PARSEC_SERVER": self.served.url, "PARSEC_TOKEN": token or self.token}
        return invoke(*args, env=env, input=input)

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def next_message(self) -> EmailMessage:
        """The next email the SMTP server accepted."""
        return self.run(self.mailbox.next_message())

    def sink_publish(self, *extra: str, subject: str = "Ready") -> Result:
        """publish-or-sink of ``{"n": 1}`` into LOBBY, for ANA through ``mail``."""
        return self.cli(
            "publish-or-sink", LOBBY, "--sink", "mail", "--recipient", ANA,
            "--subject", subject, "--body", "report.pdf", "--data", '{"n": 1}', *extra,
        )  # fmt: skip

    def dead_letters(self, *subjects: str) -> list[str]:
        """Refused deliveries of ``subjects``; their dead letter ids, newest first."""
        self.mailbox.refuse = REFUSAL
        for subject in subjects:
            assert self.sink_publish(subject=subject).exit_code == 1
        items = envelope_of(self.cli("dlq", "list", "mail", "--json"), "parsec.dlq.list")
        return [item["id"] for item in items["items"]]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """A real Parsec on a free port whose sink ``mail`` talks to a local SMTP server."""
    loop = asyncio.new_event_loop()
    started: queue.Queue[Served | BaseException] = queue.Queue()
    stop = asyncio.Event()
    mailbox = Mailbox()

    async def serve() -> None:
        try:
            async with smtp_server(mailbox) as port, serving(email_options(tmp_path, port)) as s:
                await s.parsec.open_public(LOBBY)
                started.put(s)
                await stop.wait()
        except BaseException as exc:
            started.put(exc)
            raise

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    outcome = started.get(timeout=30)
    if isinstance(outcome, BaseException):
        thread.join()
        loop.close()
        raise outcome
    try:
        yield Live(outcome, mailbox, loop, outcome.parsec.issue_mgmt("operator").token)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        loop.close()


# -- publish-or-sink -----------------------------------------------------------------------


def test_publish_or_sink_emails_when_nobody_listens(live: Live) -> None:
    """Nobody subscribed: the command waits for the email and says it was delivered."""
    result = live.sink_publish("--metadata", "job=7", "--metadata", "kind=pdf")

    assert result.exit_code == 0, result.output
    assert result.stdout == "sinked: delivered through mail after 1 attempt(s)\n"
    mail = live.next_message()
    assert (mail["To"], mail["Subject"]) == ("ana@example.test", "Ready")
    assert mail.get_content().strip() == "report.pdf"


def test_publish_or_sink_publishes_to_a_live_subscriber(live: Live) -> None:
    """With a centrifuge-python subscriber the data is published and no email is sent."""

    async def subscribe() -> tuple[contextlib.AsyncExitStack, asyncio.Queue[Any]]:
        stack = contextlib.AsyncExitStack()
        publications = await stack.enter_async_context(subscribed(live.served, "ana", LOBBY))
        return stack, publications

    stack, publications = live.run(subscribe())
    try:
        result = live.sink_publish("--json")
        payload = envelope_of(result, "parsec.publish_or_sink")
        assert (payload["sinked"], payload["offset"]) == (False, 1)
        assert live.run(asyncio.wait_for(publications.get(), 10)) == {"n": 1}
    finally:
        live.run(stack.aclose())
    assert live.mailbox.received.empty()


def test_publish_or_sink_no_wait_queues_the_email(live: Live) -> None:
    """--no-wait returns once the message is queued; the email arrives afterwards."""
    result = live.sink_publish("--no-wait")

    assert result.exit_code == 0, result.output
    assert result.stdout == "sinked: queued for delivery through mail\n"
    assert live.next_message()["Subject"] == "Ready"


def test_publish_or_sink_reads_the_data_from_stdin(live: Live) -> None:
    """Without --data or --file the JSON comes from stdin."""
    result = live.cli(
        "publish-or-sink", LOBBY, "--sink", "mail", "--recipient", ANA, input='{"n": 2}'
    )

    assert result.exit_code == 0, result.output
    assert live.next_message()["To"] == "ana@example.test"


def test_publish_or_sink_reports_a_dead_lettered_delivery(live: Live) -> None:
    """A refused email exits 1 naming the dead letter and how to replay it."""
    live.mailbox.refuse = REFUSAL

    result = live.sink_publish()

    [item] = envelope_of(live.cli("dlq", "list", "--json"), "parsec.dlq.list")["items"]
    assert_error(result, 1, "550", item["id"], "parsec dlq replay")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--sink", "sms", "--recipient", ANA, "-d", "1"], ["PARSEC_SINK_CONFIG_INVALID"]),
        (["--sink", "mail", "--recipient", "{}", "-d", "1"], ["PARSEC_INVALID_ARGUMENT"]),
    ],
)
def test_publish_or_sink_server_errors_exit_1(
    live: Live, args: list[str], words: list[str]
) -> None:
    """An unknown sink or a recipient the sink cannot use is the server's coded error."""
    assert_error(live.cli("publish-or-sink", LOBBY, *args), 1, *words)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--sink", "mail", "--recipient", "{oops", "-d", "1"], ["--recipient"]),
        (["--sink", "mail", "--metadata", "novalue", "-d", "1"], ["--metadata", "KEY=VALUE"]),
        (["--sink", "mail", "--metadata", "=v", "-d", "1"], ["--metadata"]),
        (["--sink", " ", "-d", "1"], ["--sink"]),
        (["--sink", "mail", "-d", "{not json"], ["not valid JSON"]),
        (["--sink", "mail", "-d", ""], ["empty"]),
    ],
)
def test_publish_or_sink_bad_flags_exit_2(args: list[str], words: list[str]) -> None:
    """Bad flags or data exit 2 before any request (no server is running here)."""
    env = {"PARSEC_SERVER": "http://127.0.0.1:9", "PARSEC_TOKEN": "t"}
    assert_error(invoke("publish-or-sink", LOBBY, *args, env=env), 2, *words)


def test_publish_or_sink_needs_a_token() -> None:
    """Without a management token the command exits 2 saying how to get one."""
    result = invoke("publish-or-sink", LOBBY, "--sink", "mail", "-d", "1")
    assert_error(result, 2, "no management token")


# -- dlq -----------------------------------------------------------------------------------


def test_dlq_count_and_list(live: Live) -> None:
    """count prints a number per sink or overall; list shows a table newest first."""
    newest, oldest = live.dead_letters("first", "second")

    assert live.cli("dlq", "count", "mail").stdout == "2\n"
    assert live.cli("dlq", "count").stdout == "2\n"
    assert live.cli("dlq", "count", "slack").stdout == "0\n"
    lines = live.cli("dlq", "list", "mail").stdout.splitlines()
    assert lines[0].split()[:4] == ["ID", "SINK", "AT", "ATTEMPTS"]
    assert [line.split()[0] for line in lines[1:]] == [newest, oldest]
    assert "second" in lines[1]
    assert "ana@example.test" in lines[1]
    limited = live.cli("dlq", "list", "--limit", "1").stdout.splitlines()
    assert len(limited) == 2


def test_dlq_list_json_carries_the_recipient_as_json(live: Live) -> None:
    """The parsec.dlq.list envelope has every field, the recipient decoded."""
    live.dead_letters("Ready")

    [item] = envelope_of(live.cli("dlq", "list", "mail", "--json"), "parsec.dlq.list")["items"]

    assert item["recipient"] == {"address": "ana@example.test"}
    assert (item["sink"], item["subject"], item["body"], item["attempts"]) == (
        "mail",
        "Ready",
        "report.pdf",
        1,
    )
    assert "550" in item["last_error"]
    assert item["at"].endswith("Z")
    count = envelope_of(live.cli("dlq", "count", "mail", "--json"), "parsec.dlq.count")
    assert count == {"sink": "mail", "count": 1}


def test_dlq_list_when_empty(live: Live) -> None:
    """An empty queue says so."""
    result = live.cli("dlq", "list")

    assert result.exit_code == 0, result.output
    assert result.stdout == "no dead letters\n"


def test_dlq_replay_discard_round_trip(live: Live) -> None:
    """A failed replay exits 1 and adds a letter; once the server accepts, replay delivers
    the original email; discard removes the letter, and a second discard is not found."""
    [letter] = live.dead_letters("Ready")

    failed = live.cli("dlq", "replay", letter)
    assert_error(failed, 1, "failed again", "550", "new dead letter")
    assert live.cli("dlq", "count", "mail").stdout == "2\n"

    live.mailbox.refuse = None
    replayed = live.cli("dlq", "replay", letter)
    assert replayed.exit_code == 0, replayed.output
    assert replayed.stdout == f"replayed {letter}: delivered after 1 attempt\n"
    mail = live.next_message()
    assert (mail["To"], mail["Subject"]) == ("ana@example.test", "Ready")

    discarded = live.cli("dlq", "discard", letter, "--json")
    assert envelope_of(discarded, "parsec.dlq.discarded") == {"id": letter}
    assert live.cli("dlq", "count", "mail").stdout == "1\n"
    assert_error(live.cli("dlq", "discard", letter), 1, "PARSEC_SINK_DLQ_NOT_FOUND")


def test_dlq_replay_json_reports_a_failure_and_exits_1(live: Live) -> None:
    """--json prints the parsec.dlq.replayed envelope even when the replay failed again."""
    [letter] = live.dead_letters("Ready")

    result = live.cli("dlq", "replay", letter, "--json")

    assert result.exit_code == 1
    payload = envelope_of(result, "parsec.dlq.replayed")
    assert (payload["id"], payload["delivered"], payload["attempts"]) == (letter, False, 1)
    assert payload["dlq_id"] not in ("", letter)


@pytest.mark.parametrize("command", ["replay", "discard"])
def test_dlq_unknown_letter_is_not_found(live: Live, command: str) -> None:
    """replay or discard of an unknown id exits 1 with PARSEC_SINK_DLQ_NOT_FOUND."""
    result = live.cli("dlq", command, "0123456789abcdef")

    assert_error(result, 1, "PARSEC_SINK_DLQ_NOT_FOUND")


def test_dlq_needs_an_operator_token(live: Live) -> None:
    """A management token without operator scopes is refused with PARSEC_AUTH_DENIED."""
    team = live.served.parsec.issue_mgmt("team", scopes=[Scope("public:**", ("manage",))])

    assert_error(live.cli("dlq", "count", token=team.token), 1, "PARSEC_AUTH_DENIED")


@pytest.mark.parametrize("limit", ["0", "1001", "many"])
def test_dlq_list_refuses_a_bad_limit(limit: str) -> None:
    """--limit outside 1..1000 is a usage error (exit 2)."""
    result = invoke("dlq", "list", "--limit", limit, env={"PARSEC_TOKEN": "t"})

    assert result.exit_code == 2
    assert "--limit" in result.output
