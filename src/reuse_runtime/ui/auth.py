"""Who may see the UI: the controller's token, once, then a signed session cookie.

* A person logs in with the token the gRPC API takes (a form POST; or a single-use
  login link that ``reuse-runtime ui`` prints, which carries a code, never the
  token). The answer sets a session cookie, ``HttpOnly`` and ``SameSite=Strict``,
  and no URL carries a secret after that.
* The cookie is ``<expiry>.<nonce>.<mac>``: an HMAC, under a key derived from the
  token, of the rest. Nothing is kept per session, and changing the token ends
  every session.
* A state change (the abort) is a POST that carries the session's CSRF token (an
  HMAC of the session's nonce) and, when the browser sends one, an ``Origin`` of
  this server.
* Failed logins are counted: past :data:`FAILED_LOGINS` a minute, logins wait.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable

COOKIE = "rr_session"
#: How long a session lasts, in seconds.
SESSION_SECONDS = 12 * 3600
#: How long a login link may be used (once), in seconds.
LINK_SECONDS = 600
#: Failed logins allowed per minute; past them, logins are refused for the minute.
FAILED_LOGINS = 10
#: Login links not yet used, at most (the oldest go first).
MAX_LINKS = 64


class Sessions:
    """Issues and checks session cookies, CSRF tokens and login links for one token."""

    def __init__(self, token: str, *, clock: Callable[[], float] = time.time) -> None:
        if not token:
            raise ValueError("the web UI needs a token")
        self._token = token.encode()
        self._key = hmac.new(self._token, b"reuse-runtime web ui", hashlib.sha256).digest()
        self._clock = clock
        self._links: dict[str, float] = {}
        self._failures: deque[float] = deque()

    # ------------------------------------------------------------ the token

    def token_matches(self, given: str) -> bool:
        """Whether ``given`` is the token (constant time), counting failures."""
        ok = hmac.compare_digest(given.strip().encode(), self._token)
        if not ok:
            self._failures.append(self._clock())
        return ok

    def throttled(self) -> bool:
        """Too many failed logins in the last minute: refuse logins for now."""
        now = self._clock()
        while self._failures and now - self._failures[0] > 60:
            self._failures.popleft()
        return len(self._failures) >= FAILED_LOGINS

    # ------------------------------------------------------------ sessions

    def issue(self) -> str:
        """A new session's cookie value."""
        expires = int(self._clock() + SESSION_SECONDS)
        body = f"{expires}.{secrets.token_urlsafe(18)}"
        return f"{body}.{self._mac('session', body)}"

    def verify(self, value: str | None) -> str | None:
        """The session's nonce when ``value`` is a live session cookie of ours, else None."""
        if not value or value.count(".") != 2:
            return None
        expires, nonce, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac("session", f"{expires}.{nonce}")):
            return None
        try:
            if int(expires) < self._clock():
                return None
        except ValueError:
            return None
        return nonce

    def csrf(self, nonce: str) -> str:
        """The CSRF token of the session ``nonce`` (what its pages put in their forms)."""
        return self._mac("csrf", nonce)

    def csrf_matches(self, nonce: str, given: str) -> bool:
        return bool(given) and hmac.compare_digest(given, self.csrf(nonce))

    # ------------------------------------------------------------ login links

    def link_code(self) -> str:
        """A code for one login, within :data:`LINK_SECONDS` (``/login?code=...``)."""
        now = self._clock()
        for code, expires in list(self._links.items()):
            if expires < now:
                del self._links[code]
        while len(self._links) >= MAX_LINKS:
            del self._links[next(iter(self._links))]
        code = secrets.token_urlsafe(24)
        self._links[code] = now + LINK_SECONDS
        return code

    def redeem(self, code: str) -> bool:
        """Whether ``code`` is a login link's, unused and in time; it cannot be used again."""
        expires = self._links.pop(code, None)
        if expires is None:
            self._failures.append(self._clock())
            return False
        return expires >= self._clock()

    def _mac(self, purpose: str, text: str) -> str:
        digest = hmac.new(self._key, f"{purpose}:{text}".encode(), hashlib.sha256).digest()
        return digest.hex()[:48]


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of this server only (never ``//host``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/runs"
    return target
