"""The GitHub OAuth client against the local fake GitHub: the whole web flow, the email
fallback, and every error path (stable code, no secret in the message)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fake_github import CLIENT_ID, CLIENT_SECRET, FakeGitHub, Fault

from parsec.accounts.errors import GitHubError
from parsec.accounts.github import GitHubOAuth, GitHubUser, callback_error
from parsec.testing import free_port

REDIRECT_URI = "http://127.0.0.1:8000/auth/github/callback"


def oauth_for(
    github: FakeGitHub,
    *,
    client_secret: str = CLIENT_SECRET,
    authorize_url: str | None = None,
    client: httpx.AsyncClient | None = None,
    timeout: float = 10.0,
    max_bytes: int = 1024 * 1024,
) -> GitHubOAuth:
    """A client of the fake ``github``."""
    return GitHubOAuth(
        CLIENT_ID,
        client_secret,
        authorize_url=authorize_url or github.authorize_url,
        token_url=github.token_url,
        user_url=github.user_url,
        client=client,
        timeout=timeout,
        max_bytes=max_bytes,
    )


@pytest.fixture
async def oauth(fake_github: FakeGitHub) -> AsyncIterator[GitHubOAuth]:
    """A client of the fake, closed after the test."""
    async with oauth_for(fake_github) as client:
        yield client


async def authorize(oauth: GitHubOAuth, state: str = "st4te") -> dict[str, str]:
    """What a browser does: open the authorize URL, read where GitHub redirects it."""
    async with httpx.AsyncClient(follow_redirects=False) as browser:
        response = await browser.get(oauth.authorize_url_for(state, REDIRECT_URI))
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def code_for(oauth: GitHubOAuth) -> str:
    return (await authorize(oauth))["code"]


async def test_the_whole_web_flow_logs_alice_in(
    oauth: GitHubOAuth, fake_github: FakeGitHub
) -> None:
    """authorize → callback with code and the same state → token → alice's profile."""
    callback = await authorize(oauth, state="opaque-state")
    assert callback["state"] == "opaque-state"
    token = await oauth.exchange(callback["code"], REDIRECT_URI)
    user = await oauth.user(token)
    assert user == GitHubUser(
        id=1001, login="alice", name="Alice Liddell", email="alice@example.com"
    )
    asked = fake_github.authorize_requests[0]
    assert asked["client_id"] == CLIENT_ID
    assert asked["redirect_uri"] == REDIRECT_URI
    assert asked["scope"] == "read:user user:email"
    (token_request,) = fake_github.token_requests
    assert token_request.accept == "application/json"
    assert token_request.form["redirect_uri"] == REDIRECT_URI
    assert fake_github.hits == {"authorize": 1, "token": 1, "user": 1}


async def test_a_user_without_public_email_gets_the_primary_verified_one(
    oauth: GitHubOAuth, fake_github: FakeGitHub
) -> None:
    """bob shows no email: the primary verified address of /user/emails is used."""
    fake_github.login_as = "bob"
    user = await oauth.user(await oauth.exchange(await code_for(oauth), REDIRECT_URI))
    assert user == GitHubUser(id=1002, login="bob", name=None, email="bob@example.com")
    assert fake_github.hits["emails"] == 1


async def test_no_primary_verified_address_means_no_email(
    oauth: GitHubOAuth, fake_github: FakeGitHub
) -> None:
    """A primary address not verified (or none at all) gives email None, not an error."""
    fake_github.users["bob"].emails = [
        {"email": "bob@example.com", "primary": True, "verified": False},
        {"email": "bob@old.example", "primary": False, "verified": True},
    ]
    assert (await oauth.user(fake_github.issue_token("bob"))).email is None
    fake_github.users["bob"].emails = []
    assert (await oauth.user(fake_github.issue_token("bob"))).email is None


async def test_the_authorize_url_keeps_a_query_it_already_has(fake_github: FakeGitHub) -> None:
    """An authorize URL with its own query gets the parameters appended with &."""
    async with oauth_for(fake_github, authorize_url=fake_github.authorize_url + "?x=1") as o:
        url = o.authorize_url_for("s", REDIRECT_URI)
    query = parse_qs(urlsplit(url).query)
    assert query["x"] == ["1"]
    assert query["state"] == ["s"]
    assert query["scope"] == ["read:user user:email"]


def test_emails_url_is_derived_from_the_user_url() -> None:
    """Without emails_url, it is user_url + /emails (GitHub's /user/emails)."""
    assert GitHubOAuth("id", "secret").emails_url == "https://api.github.com/user/emails"
    given = GitHubOAuth("id", "secret", user_url="http://h/u/", emails_url="http://h/e")
    assert given.emails_url == "http://h/e"
    assert GitHubOAuth("id", "secret", user_url="http://h/u/").emails_url == "http://h/u/emails"


async def expect(code: str, call: Awaitable[object]) -> GitHubError:
    """Await ``call``, which must raise a GitHubError with ``code``."""
    with pytest.raises(GitHubError) as caught:
        await call
    assert caught.value.code == code
    return caught.value


async def test_a_code_works_once(oauth: GitHubOAuth) -> None:
    """The second exchange of a code is PARSEC_GITHUB_BAD_CODE, as GitHub answers."""
    code = await code_for(oauth)
    await oauth.exchange(code, REDIRECT_URI)
    error = await expect("PARSEC_GITHUB_BAD_CODE", oauth.exchange(code, REDIRECT_URI))
    assert error.http_status == 400
    assert code not in str(error)


async def test_an_unknown_or_empty_code_is_refused(oauth: GitHubOAuth) -> None:
    """A made-up code, or none, is PARSEC_GITHUB_BAD_CODE."""
    await expect("PARSEC_GITHUB_BAD_CODE", oauth.exchange("made-up", REDIRECT_URI))
    await expect("PARSEC_GITHUB_BAD_CODE", oauth.exchange("", REDIRECT_URI))


async def test_a_wrong_client_secret_is_a_configuration_error(fake_github: FakeGitHub) -> None:
    """GitHub's incorrect_client_credentials is PARSEC_GITHUB_BAD_CLIENT; the secret
    sent is not in the message."""
    async with oauth_for(fake_github, client_secret="wrong-secret-123") as o:
        code = await code_for(o)
        error = await expect("PARSEC_GITHUB_BAD_CLIENT", o.exchange(code, REDIRECT_URI))
    assert "wrong-secret-123" not in str(error)
    assert "incorrect_client_credentials" in str(error)


async def test_another_redirect_uri_is_refused(oauth: GitHubOAuth) -> None:
    """A redirect_uri other than the authorize request's is PARSEC_GITHUB_REDIRECT_MISMATCH."""
    code = await code_for(oauth)
    await expect("PARSEC_GITHUB_REDIRECT_MISMATCH", oauth.exchange(code, "http://evil.example/cb"))


async def test_a_declined_login_comes_back_as_access_denied(
    oauth: GitHubOAuth, fake_github: FakeGitHub
) -> None:
    """When the user declines, the callback has error=access_denied and the state;
    callback_error makes it PARSEC_GITHUB_DENIED."""
    fake_github.deny = True
    callback = await authorize(oauth, state="s1")
    assert callback["error"] == "access_denied"
    assert callback["state"] == "s1"
    assert "code" not in callback
    error = callback_error(callback["error"])
    assert (error.code, error.http_status) == ("PARSEC_GITHUB_DENIED", 403)
    assert callback_error("<script>").code == "PARSEC_GITHUB_OAUTH_ERROR"
    assert "<script>" not in str(callback_error("<script>"))


async def test_a_refused_access_token_is_unauthorized(oauth: GitHubOAuth) -> None:
    """/user answering 401 is PARSEC_GITHUB_UNAUTHORIZED; the token is not in the message."""
    error = await expect("PARSEC_GITHUB_UNAUTHORIZED", oauth.user("gho_not-a-real-token"))
    assert "gho_not-a-real-token" not in str(error)
    await expect("PARSEC_GITHUB_UNAUTHORIZED", oauth.user(""))


async def test_an_emails_endpoint_refusing_is_an_error(
    oauth: GitHubOAuth, fake_github: FakeGitHub
) -> None:
    """A token without user:email gets 404 from /user/emails: PARSEC_GITHUB_BAD_RESPONSE."""
    token = fake_github.issue_token("bob", scope="read:user")
    error = await expect("PARSEC_GITHUB_BAD_RESPONSE", oauth.user(token))
    assert "emails endpoint answered HTTP 404" in str(error)


FAULTS = {
    "token 500": ("token", Fault(500, b"oops"), "PARSEC_GITHUB_UNAVAILABLE"),
    "token 502 html": ("token", Fault(502, b"<html>", "text/html"), "PARSEC_GITHUB_UNAVAILABLE"),
    "token 404": ("token", Fault(404, b"{}"), "PARSEC_GITHUB_BAD_RESPONSE"),
    "token not json": ("token", Fault(200, b"<html>", "text/html"), "PARSEC_GITHUB_BAD_RESPONSE"),
    "token form-encoded": (
        "token",
        Fault(200, b"access_token=gho_x&token_type=bearer", "application/x-www-form-urlencoded"),
        "PARSEC_GITHUB_BAD_RESPONSE",
    ),
    "token no access_token": (
        "token",
        Fault(200, b'{"token_type": "bearer"}'),
        "PARSEC_GITHUB_BAD_RESPONSE",
    ),
    "token access_token not a string": (
        "token",
        Fault(200, b'{"access_token": 7}'),
        "PARSEC_GITHUB_BAD_RESPONSE",
    ),
    "token a list": ("token", Fault(200, b"[]"), "PARSEC_GITHUB_BAD_RESPONSE"),
    "token unknown error": (
        "token",
        Fault(200, b'{"error": "unverified_user_email"}'),
        "PARSEC_GITHUB_OAUTH_ERROR",
    ),
    "token error as 400": (
        "token",
        Fault(400, b'{"error": "bad_verification_code"}'),
        "PARSEC_GITHUB_BAD_CODE",
    ),
    "user 503": ("user", Fault(503, b""), "PARSEC_GITHUB_UNAVAILABLE"),
    "user 403": ("user", Fault(403, b'{"message": "rate limited"}'), "PARSEC_GITHUB_UNAUTHORIZED"),
    "user 404": ("user", Fault(404, b'{"message": "Not Found"}'), "PARSEC_GITHUB_BAD_RESPONSE"),
    "user not json": ("user", Fault(200, b"not json"), "PARSEC_GITHUB_BAD_RESPONSE"),
    "user a list": ("user", Fault(200, b"[1]"), "PARSEC_GITHUB_BAD_RESPONSE"),
    "user no id": ("user", Fault(200, b'{"login": "alice"}'), "PARSEC_GITHUB_BAD_RESPONSE"),
    "user id a string": (
        "user",
        Fault(200, b'{"id": "1", "login": "a"}'),
        "PARSEC_GITHUB_BAD_RESPONSE",
    ),
    "user id a bool": (
        "user",
        Fault(200, b'{"id": true, "login": "a"}'),
        "PARSEC_GITHUB_BAD_RESPONSE",
    ),
    "user no login": ("user", Fault(200, b'{"id": 5}'), "PARSEC_GITHUB_BAD_RESPONSE"),
    "user empty login": (
        "user",
        Fault(200, b'{"id": 5, "login": ""}'),
        "PARSEC_GITHUB_BAD_RESPONSE",
    ),
    "emails not a list": ("emails", Fault(200, b"{}"), "PARSEC_GITHUB_BAD_RESPONSE"),
    "emails 500": ("emails", Fault(500, b""), "PARSEC_GITHUB_UNAVAILABLE"),
}


@pytest.mark.parametrize(("endpoint", "fault", "code"), FAULTS.values(), ids=FAULTS.keys())
async def test_each_bad_answer_is_a_coded_error_without_secrets(
    oauth: GitHubOAuth, fake_github: FakeGitHub, endpoint: str, fault: Fault, code: str
) -> None:
    """Every status, shape or missing field GitHub could answer becomes a GitHubError
    with its stable code, and the message holds no client secret, code or token."""
    fake_github.login_as = "bob"  # no public email: the emails endpoint is called too
    auth_code = await code_for(oauth)
    token = fake_github.issue_token("bob")
    fake_github.faults[endpoint] = fault
    call = oauth.exchange(auth_code, REDIRECT_URI) if endpoint == "token" else oauth.user(token)
    error = await expect(code, call)
    assert error.temporary is (code == "PARSEC_GITHUB_UNAVAILABLE")
    for secret in (CLIENT_SECRET, auth_code, token):
        assert secret not in str(error)
    if code == "PARSEC_GITHUB_UNAVAILABLE":
        assert fake_github.base_url.removeprefix("http://") in str(error)


async def test_github_free_text_is_never_echoed(
    oauth: GitHubOAuth, fake_github: FakeGitHub
) -> None:
    """An error code that is not a plain word, and the description, stay out of the message."""
    fake_github.faults["token"] = Fault(
        200, b'{"error": "evil <b>x</b>", "error_description": "leak-me"}'
    )
    error = await expect("PARSEC_GITHUB_OAUTH_ERROR", oauth.exchange("c", REDIRECT_URI))
    assert "leak-me" not in str(error)
    assert "<b>" not in str(error)
    assert "(unknown)" in str(error)


async def test_an_oversized_answer_is_refused(fake_github: FakeGitHub) -> None:
    """An answer over max_bytes is PARSEC_GITHUB_BAD_RESPONSE, not read to the end."""
    fake_github.faults["user"] = Fault(200, b'{"id": 1, "login": "' + b"a" * 5000 + b'"}')
    async with oauth_for(fake_github, max_bytes=1024) as o:
        error = await expect("PARSEC_GITHUB_BAD_RESPONSE", o.user(fake_github.issue_token()))
    assert "over 1024 bytes" in str(error)


async def test_a_slow_github_is_a_temporary_error(fake_github: FakeGitHub) -> None:
    """GitHub not answering within the timeout is PARSEC_GITHUB_UNAVAILABLE, temporary."""
    fake_github.delays["token"] = 1.0
    async with oauth_for(fake_github, timeout=0.1) as o:
        code = await code_for(o)
        error = await expect("PARSEC_GITHUB_UNAVAILABLE", o.exchange(code, REDIRECT_URI))
    assert error.temporary
    assert "did not answer in time" in str(error)
    assert code not in str(error)


async def test_an_unreachable_github_is_a_temporary_error() -> None:
    """Nothing listening on the token URL: PARSEC_GITHUB_UNAVAILABLE, naming the host."""
    port = free_port()
    async with GitHubOAuth(
        CLIENT_ID, CLIENT_SECRET, token_url=f"http://user:pw@127.0.0.1:{port}/t"
    ) as o:
        error = await expect("PARSEC_GITHUB_UNAVAILABLE", o.exchange("code-1", REDIRECT_URI))
    assert f"127.0.0.1:{port}" in str(error)
    assert "pw" not in str(error)
    assert CLIENT_SECRET not in str(error)
    assert error.http_status == 503


async def test_closing_is_idempotent_and_leaves_a_given_client_open(
    fake_github: FakeGitHub,
) -> None:
    """aclose twice is fine; a given httpx client stays usable; a closed one refuses calls."""
    async with httpx.AsyncClient() as given:
        o = oauth_for(fake_github, client=given)
        await o.aclose()
        await o.aclose()
        assert not given.is_closed
        with pytest.raises(RuntimeError, match="closed"):
            await o.user(fake_github.issue_token())
    owned = oauth_for(fake_github)
    async with owned:
        assert (await owned.user(fake_github.issue_token())).login == "alice"
    await owned.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await owned.user(fake_github.issue_token())


def test_the_secret_stays_out_of_repr_and_config_errors() -> None:
    """repr shows the client id, not the secret; missing config is a clear ValueError."""
    assert "s3cret" not in repr(GitHubOAuth("id", "s3cret"))
    with pytest.raises(ValueError, match="client_secret"):
        GitHubOAuth("id", "")
    with pytest.raises(ValueError, match="token_url"):
        GitHubOAuth("id", "s3cret", token_url="github.com/token")
