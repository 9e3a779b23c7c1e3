"""``parsec audit list``: an organisation's audit log, newest first.

``--since`` takes a time (ISO 8601, UTC when it names no zone) or a duration back from
now (``7d``, ``1h``); a full page ends with the ``--before-id`` that continues it.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

import typer

from parsec.cli._accounts import ApiToken, OrgOption, accounts_client, org_slug
from parsec.cli._common import (
    DEFAULT_SERVER,
    EXIT_USAGE,
    JsonFlag,
    ServerUrl,
    emit,
    fail,
    print_table,
    ttl_seconds,
)

__all__ = ["app", "since_param"]

app = typer.Typer(name="audit", help="Your organisation's audit log.", no_args_is_help=True)

_DAYS: Final = re.compile(r"(\d+)d")


def since_param(text: str | None) -> str | None:
    """``--since`` as the ISO 8601 time the API takes; exits 2 when it is neither a
    time nor a duration."""
    if text is None:
        return None
    text = text.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        days = _DAYS.fullmatch(text)
        if days is not None:
            seconds = int(days.group(1)) * 86400
        elif text and (text[0].isdigit() or text[0] == "."):
            seconds = ttl_seconds(text, "--since")
        else:
            fail(
                f"--since: not a time (2026-01-31T12:00:00Z) or a duration (7d, 1h): {text!r}",
                EXIT_USAGE,
            )
        moment = datetime.now(UTC) - timedelta(seconds=seconds)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


@app.command("list")
def list_events(
    action: Annotated[
        str | None,
        typer.Option("--action", metavar="ACTION", help="Only this action, e.g. apikey.created."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="WHEN", help="Only events since a time or a duration ago."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=500, help="At most this many events.")
    ] = 50,
    before_id: Annotated[
        int | None,
        typer.Option("--before-id", metavar="ID", min=1, help="Only events older than this id."),
    ] = None,
    org: OrgOption = None,
    server: ServerUrl = DEFAULT_SERVER,
    token: ApiToken = None,
    as_json: JsonFlag = False,
) -> None:
    """List the organisation's audit events, newest first."""
    params = {
        "action": action or "",
        "since": since_param(since) or "",
        "limit": str(limit),
        "before_id": str(before_id) if before_id is not None else "",
    }
    with accounts_client(server, token) as api:
        slug = org_slug(api, org)
        page: dict[str, Any] = api.get(f"/orgs/{slug}/audit", params=params)
    emit(as_json, "parsec.audit.list", {"org": slug, **page}, lambda: _print(page))


def _print(page: dict[str, Any]) -> None:
    events: list[dict[str, Any]] = page["events"]
    print_table(
        ["ID", "AT", "ACTOR", "ACTION", "TARGET", "DETAIL"],
        [
            [
                str(e["id"]),
                e["at"],
                e["actor"] or f"{e['actor_kind']}:{e['actor_id'] or '-'}",
                e["action"],
                e["target"] or "-",
                json.dumps(e["detail"], sort_keys=True) if e["detail"] else "",
            ]
            for e in events
        ],
    )
    if page["next_before_id"] is not None:
        typer.echo(f"more: --before-id {page['next_before_id']}", err=True)
