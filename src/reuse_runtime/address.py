"""Where a controller (or a worker) listens: :func:`parse_address`, the one reader of them.

Every setting that names a controller reads it here: ``init(endpoint=...)``,
``$REUSE_RUNTIME_ENDPOINT``, ``[controller] endpoint`` in the config file,
``reuse-runtime status --endpoint``, ``reuse-runtime worker --controller`` and
``reuse-runtime health``. Two forms are accepted, ours and Flyte's::

    parse_address("127.0.0.1:50050")          # HOST:PORT
    parse_address("dns:///localhost:8090")    # Flyte's flyte.init(endpoint=...)
    parse_address("[::1]:50050")              # an IPv6 address, in brackets

Anything else fails at once with one line naming what was given and the forms
accepted (a URL such as ``https://host`` included: a controller speaks gRPC,
not HTTP), instead of after a connection timeout.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from reuse_runtime.errors import ConfigError

#: Flyte's spelling of a gRPC target resolved through DNS (``dns:///host:port``).
DNS_SCHEME = "dns:///"
FORMS = "HOST:PORT or dns:///HOST:PORT"
_HOST_NAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9._-]*[A-Za-z0-9_])?\.?")
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
#: gRPC's other target schemes (``unix:path``, ``ipv4:addr``): not dialled here.
_GRPC_SCHEMES = ("dns", "ipv4", "ipv6", "unix", "unix-abstract", "vsock")


@dataclass(frozen=True)
class Address:
    """A host (a name, or an IP address; IPv6 without brackets) and a TCP port."""

    host: str
    port: int

    def __str__(self) -> str:
        """``HOST:PORT`` (``[V6]:PORT``): what gRPC dials and what messages show."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str, where: str = "endpoint") -> Address:
    """The :class:`Address` that ``text`` names; else a :class:`ConfigError` saying why.

    ``where`` names the setting in the message (``"--controller"``,
    ``"$REUSE_RUNTIME_ENDPOINT"``, ``"cfg.toml:2: [controller] endpoint"``).
    """
    given = f"{where} {text!r}"
    rest = text.strip()
    if rest[: len(DNS_SCHEME)].lower() == DNS_SCHEME:
        rest = rest[len(DNS_SCHEME) :]
    else:
        _refuse_scheme(given, rest)
    if rest.startswith("["):
        host, bracket, port = rest[1:].partition("]")
        if not bracket or (port and not port.startswith(":")) or not _is_ipv6(host):
            raise ConfigError(f"{given} is not {FORMS}: an IPv6 address is written [::1]:50050")
        port = port[1:]
    else:
        host, colon, port = rest.rpartition(":")
        if not colon:
            host, port = rest, ""
        if ":" in host or _is_ipv6(rest):
            raise ConfigError(
                f"{given} is not {FORMS}: write an IPv6 address in brackets, [::1]:50050"
            )
        if not host:
            raise ConfigError(f"{given} names no host: give {FORMS}, for example 127.0.0.1:50050")
        if not _HOST_NAME.fullmatch(host):
            raise ConfigError(f"{given} is not {FORMS}: {host!r} is not a host name or IP address")
    if not port:
        shown = f"[{host}]" if ":" in host else host
        raise ConfigError(f"{given} has no port: give {FORMS}, for example {shown}:50050")
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ConfigError(f"{given} is not {FORMS}: its port {port!r} is not a number in 1-65535")
    return Address(host, int(port))


def _refuse_scheme(given: str, text: str) -> None:
    """Raise for a URL (``https://host``) or another gRPC target form; else nothing."""
    url = _URL.match(text)
    if url is not None:
        scheme, rest = url.group(1).lower(), text[url.end() :]
    else:
        scheme, _, rest = text.partition(":")
        scheme = scheme.lower()
        if scheme not in _GRPC_SCHEMES or rest.isdigit():  # a host named "dns" is a host
            return
    hostport = rest.split("/", 1)[0]
    if scheme in ("http", "https"):
        example = (
            hostport if hostport.rpartition(":")[2].isdigit() else f"{hostport or 'HOST'}:50050"
        )
        raise ConfigError(
            f"{given} is a URL, and a controller speaks gRPC, not HTTP: give {FORMS}, "
            f"for example {example}"
        )
    if scheme == "dns":
        example = rest.rsplit("/", 1)[-1] or "localhost:50050"
        raise ConfigError(
            f"{given} is not {FORMS}: dns: takes three slashes and no DNS server, "
            f"as in dns:///{example}"
        )
    raise ConfigError(f"{given} is not {FORMS}: {scheme}: addresses are not dialled here")


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True
