"""Parsec accounts: the primitives of web login (domain layer, no I/O framework).

- :mod:`parsec.accounts.redirects`: ``safe_next``, the open-redirect guard.
- :mod:`parsec.accounts.signing`: the session key(s) and the timed signer both
  signed values below use, each with a salt of its own.
- :mod:`parsec.accounts.session_cookie`: the signed session cookie (7 days).
- :mod:`parsec.accounts.oauth_state`: one-time OAuth ``state`` values (10 minutes),
  their one-time-ness kept by a :class:`~parsec.accounts.oauth_state.StateLedger`.
- :mod:`parsec.accounts.github`: a small GitHub OAuth client over httpx.
- :mod:`parsec.accounts.oidc_login`: login with any OpenID Connect provider (code flow,
  PKCE and nonce derived from the state, the ID token verified).
- :mod:`parsec.accounts.errors`: the errors above, each with a stable code.

The login flow these serve (routes wired by a surface)::

    GET /auth/github/start?next=PATH
        state = OAuthStates.mint(next)                         (safe_next inside)
        302 → GitHubOAuth.authorize_url_for(state, redirect_uri)
    GET /auth/github/callback?code=…&state=…
        OAuthStates.consume(state)  → .next                    (once, on any worker)
        GitHubOAuth.exchange(code, redirect_uri) → access token
        GitHubOAuth.user(token)     → GitHubUser(id, login, name, email)
        Set-Cookie: SessionCookies.set_cookie_header(SessionCookies.sign(user_id))
        303 → next
"""
