"""A local fake GitHub for login tests: the OAuth web flow and the user API, served by
uvicorn on a real loopback port in a thread of its own (so a ``parsec serve`` process, or
a test that blocks its event loop, can reach it), as GitHub answers them.

Routes (``base_url`` is ``http://127.0.0.1:<port>``)::

    GET  /login/oauth/authorize      client_id, redirect_uri (required here), scope, state:
                                     302 to redirect_uri?code=…&state=… as ``login_as``,
                                     or ?error=access_denied&state=… when ``deny``
    POST /login/oauth/access_token   form client_id, client_secret, code, redirect_uri:
                                     200 {"access_token", "token_type", "scope"} (JSON when
                                     Accept asks for it, else form-encoded, as GitHub), or
                                     200 {"error": "incorrect_client_credentials" |
                                     "bad_verification_code" | "redirect_uri_mismatch"};
                                     a code works once
    GET  /user                       Bearer (or ``token``) access token: the profile, or
                                     401 {"message": "Bad credentials"}
    GET  /user/emails                the user's addresses; 404 without the user:email scope

The app (:data:`CLIENT_ID`, :data:`CLIENT_SECRET`) and the users (:data:`ALICE`, with a
public email; :data:`BOB`, without one but with a primary verified address) are there
from the start. Test controls: ``users`` (by login), ``login_as``, ``deny``, ``hits``
(requests per endpoint: ``authorize``, ``token``, ``user``, ``emails``),
``token_requests`` (each token request's form and Accept header), ``faults`` (an
endpoint answers a raw :class:`Fault` instead), ``delays`` (seconds an endpoint waits
before answering), :meth:`FakeGitHub.issue_token`, and :meth:`FakeGitHub.reset`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from parsec.testing import free_port

__all__ = [
    "ALICE",
    "BOB",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "FakeGitHub",
    "FakeGitHubUser",
    "Fault",
    "TokenRequest",
    "running_github",
    "serving_in_thread",
]

READY_TIMEOUT: Final = 10.0
CLIENT_ID: Final = "Iv1.parsec-tests"
CLIENT_SECRET: Final = "gh-secret:with/odd+chars"
SCOPE: Final = "read:user user:email"
DOCS: Final = "https://docs.github.com/rest"


@dataclass(slots=True)
class FakeGitHubUser:
    """A GitHub account: ``email`` is the public profile address; ``emails`` is what
    ``/user/emails`` lists (``{"email", "primary", "verified", "visibility"}``)."""

    id: int
    login: str
    name: str | None = None
    email: str | None = None
    emails: list[dict[str, Any]] = field(default_factory=list)

    def profile(self) -> dict[str, Any]:
        return {
            "login": self.login,
            "id": self.id,
            "node_id": f"U_{self.id}",
            "avatar_url": f"https://avatars.example/{self.id}",
            "type": "User",
            "name": self.name,
            "email": self.email,
        }


def _alice() -> FakeGitHubUser:
    return FakeGitHubUser(
        id=1001,
        login="alice",
        name="Alice Liddell",
        email="alice@example.com",
        emails=[
            {
                "email": "alice@example.com",
                "primary": True,
                "verified": True,
                "visibility": "public",
            }
        ],
    )


def _bob() -> FakeGitHubUser:
    return FakeGitHubUser(
        id=1002,
        login="bob",
        name=None,
        email=None,
        emails=[
            {"email": "bob@old.example", "primary": False, "verified": True, "visibility": None},
            {"email": "bob@unverified.example", "primary": False, "verified": False},
            {"email": "bob@example.com", "primary": True, "verified": True, "visibility": None},
        ],
    )


ALICE: Final = _alice()
"""A user with a public email."""
BOB: Final = _bob()
"""A user without a public email, whose primary verified address is bob@example.com."""


@dataclass(frozen=True, slots=True)
class Fault:
    """A raw answer an endpoint gives instead of its own."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """One request to the token endpoint, as received."""

    form: dict[str, str]
    accept: str


@dataclass(frozen=True, slots=True)
class _Grant:
    client_id: str
    redirect_uri: str
    scope: str
    login: str


class FakeGitHub:
    """The fake's state and its Starlette app; serve it with :func:`running_github`."""

    def __init__(self) -> None:
        self.base_url = ""
        """``http://127.0.0.1:<port>``, set once it is served."""
        self.app = Starlette(
            routes=[
                Route("/login/oauth/authorize", self._authorize, methods=["GET"]),
                Route("/login/oauth/access_token", self._token, methods=["POST"]),
                Route("/user", self._user, methods=["GET"]),
                Route("/user/emails", self._emails, methods=["GET"]),
            ]
        )
        self.reset()

    def reset(self) -> None:
        """The app and the two users, ``login_as`` alice, nothing counted, issued or
        overridden: as new, on the same port."""
        self.clients: dict[str, str] = {CLIENT_ID: CLIENT_SECRET}
        """OAuth apps: client id -> secret."""
        self.users: dict[str, FakeGitHubUser] = {"alice": _alice(), "bob": _bob()}
        self.login_as = "alice"
        """Who approves on the authorize page."""
        self.deny = False
        """The user declines: the authorize page redirects with error=access_denied."""
        self.hits: Counter[str] = Counter()
        self.token_requests: list[TokenRequest] = []
        self.authorize_requests: list[dict[str, str]] = []
        self.faults: dict[str, Fault] = {}
        """By endpoint (``authorize``, ``token``, ``user``, ``emails``)."""
        self.delays: dict[str, float] = {}
        """Seconds an endpoint waits before answering, by endpoint."""
        self.codes: dict[str, _Grant] = {}
        self.tokens: dict[str, tuple[str, str]] = {}
        """Access token -> (login, scope)."""

    # --- URLs a client is configured with ------------------------------------------

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/login/oauth/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/login/oauth/access_token"

    @property
    def user_url(self) -> str:
        return f"{self.base_url}/user"

    @property
    def emails_url(self) -> str:
        return f"{self.base_url}/user/emails"

    def issue_token(self, login: str = "alice", scope: str = SCOPE) -> str:
        """An access token of ``login`` with ``scope``, as if a login had happened."""
        token = "gho_" + secrets.token_urlsafe(27)
        self.tokens[token] = (login, scope)
        return token

    # --- endpoints -----------------------------------------------------------------

    async def _answer(self, endpoint: str) -> Response | None:
        """Count the hit, wait the configured delay, and give the fault if any."""
        self.hits[endpoint] += 1
        delay = self.delays.get(endpoint)
        if delay:
            await asyncio.sleep(delay)
        fault = self.faults.get(endpoint)
        if fault is None:
            return None
        return Response(fault.body, status_code=fault.status, media_type=fault.content_type)

    async def _authorize(self, request: Request) -> Response:
        if (fault := await self._answer("authorize")) is not None:
            return fault
        params = dict(request.query_params)
        self.authorize_requests.append(params)
        client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri", "")
        if client_id not in self.clients:
            return PlainTextResponse("Not Found (unknown client_id)", status_code=404)
        if not redirect_uri or urlsplit(redirect_uri).scheme not in ("http", "https"):
            return PlainTextResponse("redirect_uri is required", status_code=400)
        state = params.get("state")
        if self.deny:
            answer = {
                "error": "access_denied",
                "error_description": "The user has denied your application access.",
                "error_uri": f"{DOCS}/oauth#access-denied",
            }
        else:
            code = secrets.token_hex(10)
            grant = _Grant(client_id, redirect_uri, params.get("scope", ""), self.login_as)
            self.codes[code] = grant
            answer = {"code": code}
        if state is not None:
            answer["state"] = state
        separator = "&" if urlsplit(redirect_uri).query else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urlencode(answer)}", status_code=302)

    async def _token(self, request: Request) -> Response:
        if (fault := await self._answer("token")) is not None:
            return fault
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        accept = request.headers.get("accept", "")
        self.token_requests.append(TokenRequest(form, accept))
        answer = self._exchange(form)
        if "json" in accept:
            return JSONResponse(answer)
        return Response(urlencode(answer), media_type="application/x-www-form-urlencoded")

    def _exchange(self, form: dict[str, str]) -> dict[str, str]:
        client_id = form.get("client_id", "")
        if client_id not in self.clients or self.clients[client_id] != form.get("client_secret"):
            return _oauth_error(
                "incorrect_client_credentials",
                "The client_id and/or client_secret passed are incorrect.",
            )
        grant = self.codes.get(form.get("code", ""))
        if grant is None or grant.client_id != client_id:
            return _oauth_error("bad_verification_code", "The code passed is incorrect or expired.")
        if form.get("redirect_uri", grant.redirect_uri) != grant.redirect_uri:
            return _oauth_error(
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
            )
        del self.codes[form["code"]]
        token = self.issue_token(grant.login, grant.scope)
        return {"access_token": token, "token_type": "bearer", "scope": grant.scope}

    def _bearer(self, request: Request) -> tuple[FakeGitHubUser, str] | None:
        """The user of the request's access token, with the token's scope."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("bearer", "token") or token not in self.tokens:
            return None
        login, scope = self.tokens[token]
        user = self.users.get(login)
        return None if user is None else (user, scope)

    async def _user(self, request: Request) -> Response:
        if (fault := await self._answer("user")) is not None:
            return fault
        if (bearer := self._bearer(request)) is None:
            return _bad_credentials()
        return JSONResponse(bearer[0].profile())

    async def _emails(self, request: Request) -> Response:
        if (fault := await self._answer("emails")) is not None:
            return fault
        if (bearer := self._bearer(request)) is None:
            return _bad_credentials()
        user, scope = bearer
        if "user:email" not in scope.replace(",", " ").split():
            return JSONResponse({"message": "Not Found", "documentation_url": DOCS}, 404)
        return JSONResponse(user.emails)


def _oauth_error(error: str, description: str) -> dict[str, str]:
    return {"error": error, "error_description": description, "error_uri": f"{DOCS}/oauth"}


def _bad_credentials() -> Response:
    return JSONResponse({"message": "Bad credentials", "documentation_url": DOCS}, 401)


@contextlib.contextmanager
def serving_in_thread(
    app: ASGIApp, name: str, *, lifespan: bool = False, port: int | None = None
) -> Iterator[str]:
    """Serve ``app`` on loopback ``port`` (a free one by default) in a thread of its own
    until the block ends; yields its base URL (``http://127.0.0.1:<port>``). With
    ``lifespan``, the app's startup runs before the block and its shutdown after."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on" if lifespan else "off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + READY_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start on port {port}")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(READY_TIMEOUT)


@contextlib.contextmanager
def running_github(github: FakeGitHub | None = None) -> Iterator[FakeGitHub]:
    """Serve ``github`` (a new one by default) on a free loopback port in a thread until
    the block ends."""
    github = github or FakeGitHub()
    with serving_in_thread(github.app, "fake-github") as base_url:
        github.base_url = base_url
        yield github
