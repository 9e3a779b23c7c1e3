"""A test-only web app wiring the accounts primitives into the login routes, as a
surface would (the real routes belong to the server; this is their sketch):

    GET /auth/github/start?next=PATH   mint a state, 302 to GitHub's authorize URL
    GET /auth/github/callback          consume the state, exchange the code, fetch the
                                       user, set the session cookie, 303 to next
    GET /me                            the session's user id, or 401
    GET /{path}                        any page: 200 with its path, so a redirect lands

Errors answer ``{"error": {"code", "message"}}`` with the error's HTTP status.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from parsec.accounts.errors import AccountsError
from parsec.accounts.github import GitHubOAuth, callback_error
from parsec.accounts.oauth_state import OAuthStates, StateLedger
from parsec.accounts.session_cookie import COOKIE_NAME, SessionCookies

CALLBACK = "/auth/github/callback"


def login_app(
    *,
    base_url: str,
    session_key: bytes,
    ledger: StateLedger,
    github: Callable[[], GitHubOAuth],
) -> Starlette:
    """The app; ``github`` makes its GitHub client (at startup, closed at shutdown).
    ``base_url`` is where the app is served (the redirect URI is built on it)."""
    cookies = SessionCookies(session_key, base_url=base_url)
    states = OAuthStates(session_key, ledger)
    holder: list[GitHubOAuth] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with github() as client:
            holder.append(client)
            yield

    def redirect_uri() -> str:
        return base_url.rstrip("/") + CALLBACK

    async def start(request: Request) -> Response:
        state = states.mint(request.query_params.get("next"))
        return RedirectResponse(holder[0].authorize_url_for(state, redirect_uri()), 302)

    async def callback(request: Request) -> Response:
        params = request.query_params
        consumed = await states.consume(params.get("state"))
        if "error" in params or "code" not in params:
            raise callback_error(params.get("error"))
        token = await holder[0].exchange(params["code"], redirect_uri())
        user = await holder[0].user(token)
        response = RedirectResponse(consumed.next, 303)
        response.set_cookie(**cookies.cookie_attributes(cookies.sign(str(user.id))))
        return response

    async def me(request: Request) -> Response:
        payload = cookies.verify(request.cookies.get(COOKIE_NAME))
        return JSONResponse({"user_id": payload.user_id})

    async def page(request: Request) -> Response:
        return JSONResponse({"page": request.url.path, "query": request.url.query})

    async def error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AccountsError)
        body = {"error": {"code": exc.code, "message": exc.message}}
        return JSONResponse(body, status_code=exc.http_status)

    return Starlette(
        routes=[
            Route("/auth/github/start", start),
            Route(CALLBACK, callback),
            Route("/me", me),
            Route("/{path:path}", page),
        ],
        exception_handlers={AccountsError: error},
        lifespan=lifespan,
    )
