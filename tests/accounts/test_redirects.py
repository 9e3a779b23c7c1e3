"""The open-redirect guard: only a single-slash relative path survives as ``next``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parsec.accounts.redirects import MAX_NEXT_LENGTH, safe_next

KEPT = [
    "/",
    "/dashboard",
    "/dashboard?x=1",
    "/orgs/acme/keys?tab=active&page=2#top",
    "/caf%C3%A9",  # a percent-encoded non-ASCII path
    "/%ff",  # percent-encoded bytes that are not UTF-8: still a path here
    "/a/../b",  # traversal stays on this site
    "/a:b",  # a colon after the first slash is no scheme
    "/?next=//evil.com",  # an absolute URL in the query is only data
    "/" + "a" * (MAX_NEXT_LENGTH - 1),
]

REFUSED = {
    "none": None,
    "empty": "",
    "relative without slash": "dashboard",
    "scheme-relative": "//evil.com",
    "scheme-relative with path": "//evil.com/dashboard",
    "triple slash": "///evil.com",
    "slash backslash": "/\\evil.com",
    "backslashes": "\\\\evil.com",
    "one backslash": "\\evil.com",
    "backslash later": "/a\\b",
    "https": "https://evil.com",
    "http uppercase": "HTTP://evil.com",
    "scheme without slashes": "https:evil.com",
    "javascript": "javascript:alert(1)",
    "data": "data:text/html,<script>alert(1)</script>",
    "bare host": "evil.com",
    "leading space": " /dashboard",
    "trailing space": "/dashboard ",
    "trailing newline": "/dashboard\n",
    "inner space": "/a b",
    "tab between slashes": "/\t/evil.com",
    "newline between slashes": "/\n/evil.com",
    "nul": "/a\x00b",
    "del": "/a\x7f",
    "crlf header injection": "/a\r\nSet-Cookie: x=1",
    "non-ascii": "/café",
    "fullwidth solidus": "/\uff0fevil.com",
    "zero width space": "/\u200b/evil.com",
    "encoded slashes": "/%2F%2Fevil.com",
    "encoded second slash": "/%2fevil.com",
    "encoded backslash": "/%5Cevil.com",
    "encoded backslash lower": "/%5cevil.com",
    "double-encoded slash": "/%252Fevil.com",
    "triple-encoded slash": "/%25252Fevil.com",
    "encoded tab": "/%09/evil.com",
    "encoded crlf": "/a%0d%0aSet-Cookie:%20x=1",
    "encoded nul": "/a%00",
    "encoded space": "/a%20b",
    "encoded fullwidth solidus": "/%EF%BC%8Fevil.com",
    "encoded zero width space": "/%E2%80%8B/evil.com",
    "encoded leading slash": "%2F%2Fevil.com",
    "encoded scheme": "https%3A%2F%2Fevil.com",
    "endless encoding": "/%252525252525252F",
    "too long": "/" + "a" * MAX_NEXT_LENGTH,
}


@pytest.mark.parametrize("value", KEPT)
def test_a_single_slash_relative_path_is_kept_as_given(value: str) -> None:
    """A path on this site comes back unchanged, never decoded."""
    assert safe_next(value) == value


@pytest.mark.parametrize("value", REFUSED.values(), ids=REFUSED.keys())
def test_anything_that_could_leave_the_site_becomes_the_home_page(value: str | None) -> None:
    """Every open-redirect trick in the table, plain or percent-encoded, becomes ``/``."""
    assert safe_next(value) == "/"


@given(st.text(max_size=64))
def test_safe_next_never_raises_and_never_leaves_the_site(value: str) -> None:
    """Whatever the value, the result is a path starting with exactly one slash."""
    result = safe_next(value)
    assert result.startswith("/")
    assert not result.startswith(("//", "/\\"))
    assert result in ("/", value)
