"""The HTML of the device flow's verify page: server-rendered, self-contained (no
script, no external asset), every value HTML-escaped.

Each function returns a whole document; :func:`page` answers it with the headers that
keep it out of caches and frames (a page with an Approve button must not be framed).
"""

from __future__ import annotations

from html import escape
from typing import Final

from starlette.responses import HTMLResponse

__all__ = ["approval", "code_form", "done", "page", "problem"]

FORM_ACTION: Final = "/oauth/device"

_HEADERS: Final = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

_STYLE: Final = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}"
    ".code{font:700 2rem ui-monospace,monospace;letter-spacing:.2rem}"
    "button{font-size:1rem;padding:.5rem 1.5rem;margin-right:.5rem}"
)


def page(body: str, status: int = 200) -> HTMLResponse:
    """``body`` (already escaped) as an HTML answer with ``status``."""
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Parsec: log in a device</title><style>{_STYLE}</style></head>"
        f"<body><h1>Parsec</h1>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=_HEADERS)


def approval(*, user_code: str, username: str, scope: str, csrf: str) -> str:
    """Asks ``username`` whether to log the device showing ``user_code`` in."""
    scope_line = f"<p>It asks for: {escape(scope)}</p>" if scope else ""
    return (
        "<p>A device (such as <code>parsec login</code> in a terminal) asks to act as "
        f"<strong>{escape(username)}</strong>.</p>"
        "<p>Check that it shows this code:</p>"
        f'<p class="code">{escape(user_code)}</p>{scope_line}'
        f'<form method="post" action="{FORM_ACTION}">'
        f'<input type="hidden" name="user_code" value="{escape(user_code)}">'
        f'<input type="hidden" name="csrf_token" value="{escape(csrf)}">'
        '<button type="submit" name="decision" value="approve">Approve</button>'
        '<button type="submit" name="decision" value="deny">Deny</button>'
        "</form>"
        "<p>Approve only if you started this login yourself.</p>"
    )


def code_form(username: str, message: str = "") -> str:
    """Asks ``username`` for the code their device shows."""
    note = f"<p>{escape(message)}</p>" if message else ""
    return (
        f"{note}<p>Logged in as <strong>{escape(username)}</strong>. "
        "Enter the code your device shows:</p>"
        f'<form method="get" action="{FORM_ACTION}">'
        '<input name="user_code" autocomplete="off" placeholder="XXXX-XXXX" '
        'maxlength="9" autofocus> <button type="submit">Continue</button></form>'
    )


def done(approved: bool, user_code: str) -> str:
    """The end: what was decided."""
    if approved:
        return (
            f"<p>Device <code>{escape(user_code)}</code> is logged in.</p>"
            "<p>You can go back to your terminal.</p>"
        )
    return (
        f"<p>Device <code>{escape(user_code)}</code> was denied.</p>"
        "<p>You can go back to your terminal; it will not be logged in.</p>"
    )


def problem(message: str) -> str:
    """Something went wrong: ``message`` and a way back."""
    return f'<p>{escape(message)}</p><p><a href="{FORM_ACTION}">Enter a code</a></p>'
