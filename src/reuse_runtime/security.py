"""Who may talk to a worker or a controller.

A worker runs arbitrary code by design, so:

* it binds to 127.0.0.1 unless told otherwise;
* a non-loopback bind is refused unless a shared token or mTLS is configured;
* the token travels as ``authorization: Bearer <token>`` metadata, is compared
  in constant time, and is never logged.

The token comes from ``--token`` or ``$REUSE_RUNTIME_TOKEN``, else from the file
``$REUSE_RUNTIME_TOKEN_FILE`` names (a Kubernetes Secret mounted as a volume); the
SDK reads the same variables.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from reuse_runtime.errors import AuthConfigError

TOKEN_ENV = "REUSE_RUNTIME_TOKEN"
TOKEN_FILE_ENV = "REUSE_RUNTIME_TOKEN_FILE"
TLS_CERT_ENV = "REUSE_RUNTIME_TLS_CERT"
TLS_KEY_ENV = "REUSE_RUNTIME_TLS_KEY"
TLS_CA_ENV = "REUSE_RUNTIME_TLS_CA"


@dataclass(frozen=True)
class TLSConfig:
    """PEM files, read once. On a server, ``ca`` set means client certificates are
    required (mTLS); on a client, ``ca`` verifies the server and ``cert`` is presented.

    The same certificate serves both roles, so it needs no extended key usage, or both.
    """

    cert_path: str
    key_path: str
    ca_path: str | None = None
    cert: bytes = b""
    key: bytes = b""
    ca: bytes | None = None

    @classmethod
    def from_files(cls, cert: str, key: str, ca: str | None = None) -> TLSConfig:
        try:
            return cls(
                cert,
                key,
                ca,
                Path(cert).read_bytes(),
                Path(key).read_bytes(),
                Path(ca).read_bytes() if ca else None,
            )
        except OSError as exc:
            raise AuthConfigError(f"cannot read TLS file {exc.filename}: {exc.strerror}") from None

    def environment(self) -> dict[str, str]:
        """The variables that give a child process (a local replica) the same files."""
        env = {TLS_CERT_ENV: self.cert_path, TLS_KEY_ENV: self.key_path}
        if self.ca_path:
            env[TLS_CA_ENV] = self.ca_path
        return env


@dataclass(frozen=True)
class Security:
    """Authentication settings for one server or client."""

    token: str | None = None
    tls: TLSConfig | None = None

    def __repr__(self) -> str:  # never show the token
        return f"Security(token={'set' if self.token else 'unset'}, tls={self.tls is not None})"

    def environment(self) -> dict[str, str]:
        """The variables that give a child process these settings (never its command line)."""
        env = self.tls.environment() if self.tls is not None else {}
        if self.token:
            env[TOKEN_ENV] = self.token
        return env

    @property
    def authenticated(self) -> bool:
        return bool(self.token) or (self.tls is not None and self.tls.ca is not None)

    @classmethod
    def from_env(
        cls,
        token: str | None = None,
        cert: str | None = None,
        key: str | None = None,
        ca: str | None = None,
    ) -> Security:
        """Flags win over ``$REUSE_RUNTIME_TOKEN`` (then ``_TOKEN_FILE``) and ``_TLS_*``."""
        token = token or os.environ.get(TOKEN_ENV) or token_from_file() or None
        cert = cert or os.environ.get(TLS_CERT_ENV)
        key = key or os.environ.get(TLS_KEY_ENV)
        ca = ca or os.environ.get(TLS_CA_ENV)
        if bool(cert) != bool(key):
            raise AuthConfigError("TLS needs both a certificate and a key (--tls-cert, --tls-key)")
        tls = TLSConfig.from_files(cert, key, ca) if cert and key else None
        return cls(token=token, tls=tls)

    def with_token_if_open(self) -> Security:
        """These settings, or with a random token if they carry no credentials.

        A server never runs open: loopback is no boundary on a shared machine.
        """
        if self.authenticated:
            return self
        return dataclasses.replace(self, token=secrets.token_urlsafe(32))

    def check_bind(self, host: str) -> None:
        """Refuse a non-loopback bind without authentication."""
        if is_loopback(host) or self.authenticated:
            return
        raise AuthConfigError(
            f"refusing to listen on {host} without authentication: anyone who can reach it "
            f"could run code here. Set a shared token (--token or ${TOKEN_ENV}) or mTLS "
            f"(--tls-cert, --tls-key and --tls-ca), or bind to 127.0.0.1"
        )


def token_from_file() -> str | None:
    """The token in the file ``$REUSE_RUNTIME_TOKEN_FILE`` names, if it is set."""
    path = os.environ.get(TOKEN_FILE_ENV)
    if not path:
        return None
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise AuthConfigError(
            f"cannot read the token file ${TOKEN_FILE_ENV}={path}: {exc.strerror}"
        ) from None
    if not token:
        raise AuthConfigError(f"the token file ${TOKEN_FILE_ENV}={path} is empty")
    return token


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
