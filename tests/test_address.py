"""``parse_address``: ours and Flyte's forms accepted, anything else one line that says
what was given and which forms work (item 7 of issue 28)."""

from __future__ import annotations

import pytest

from reuse_runtime.address import Address, parse_address
from reuse_runtime.errors import ConfigError

FORMS = "HOST:PORT or dns:///HOST:PORT"


@pytest.mark.parametrize(
    ("text", "host", "port", "shown"),
    [
        ("127.0.0.1:50050", "127.0.0.1", 50050, "127.0.0.1:50050"),
        ("localhost:8090", "localhost", 8090, "localhost:8090"),
        # Flyte's form: flyte.init(endpoint="dns:///localhost:8090").
        ("dns:///localhost:8090", "localhost", 8090, "localhost:8090"),
        ("DNS:///ctl.team.svc:50050", "ctl.team.svc", 50050, "ctl.team.svc:50050"),
        ("[::1]:50050", "::1", 50050, "[::1]:50050"),
        ("dns:///[::1]:50050", "::1", 50050, "[::1]:50050"),
        ("dns:///[fe80::1%eth0]:5", "fe80::1%eth0", 5, "[fe80::1%eth0]:5"),
        ("  my_host.local:1\n", "my_host.local", 1, "my_host.local:1"),  # from a file or $VAR
        ("dns:65535", "dns", 65535, "dns:65535"),  # a host named "dns"
    ],
)
def test_the_accepted_forms(text: str, host: str, port: int, shown: str) -> None:
    address = parse_address(text)
    assert address == Address(host, port)
    assert str(address) == shown
    assert parse_address(shown) == address  # what it shows reads back the same


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "http://localhost:8090",
            "endpoint 'http://localhost:8090' is a URL, and a controller speaks gRPC, not "
            f"HTTP: give {FORMS}, for example localhost:8090",
        ),
        (
            "https://demo.hosted.unionai.cloud",
            "endpoint 'https://demo.hosted.unionai.cloud' is a URL, and a controller speaks "
            f"gRPC, not HTTP: give {FORMS}, for example demo.hosted.unionai.cloud:50050",
        ),
        (
            "HTTPS://x:443/path",
            f"endpoint 'HTTPS://x:443/path' is a URL, and a controller speaks gRPC, not HTTP: "
            f"give {FORMS}, for example x:443",
        ),
        (
            "dns://8.8.8.8/ctl:1",
            f"endpoint 'dns://8.8.8.8/ctl:1' is not {FORMS}: dns: takes three slashes and "
            f"no DNS server, as in dns:///ctl:1",
        ),
        (
            "unix:/tmp/ctl.sock",
            f"endpoint 'unix:/tmp/ctl.sock' is not {FORMS}: unix: addresses are not dialled here",
        ),
        (
            "grpc://ctl:1",
            f"endpoint 'grpc://ctl:1' is not {FORMS}: grpc: addresses are not dialled here",
        ),
        (
            "localhost",
            f"endpoint 'localhost' has no port: give {FORMS}, for example localhost:50050",
        ),
        (
            "dns:///localhost",
            f"endpoint 'dns:///localhost' has no port: give {FORMS}, for example localhost:50050",
        ),
        ("[::1]", f"endpoint '[::1]' has no port: give {FORMS}, for example [::1]:50050"),
        (
            "::1:50050",
            f"endpoint '::1:50050' is not {FORMS}: write an IPv6 address in brackets, [::1]:50050",
        ),
        ("::1", f"endpoint '::1' is not {FORMS}: write an IPv6 address in brackets, [::1]:50050"),
        ("[::1]50050", f"endpoint '[::1]50050' is not {FORMS}: an IPv6 address is written"),
        ("[ctl]:1", f"endpoint '[ctl]:1' is not {FORMS}: an IPv6 address is written"),
        (
            ":50050",
            f"endpoint ':50050' names no host: give {FORMS}, for example 127.0.0.1:50050",
        ),
        ("h:0", f"endpoint 'h:0' is not {FORMS}: its port '0' is not a number in 1-65535"),
        ("h:65536", f"endpoint 'h:65536' is not {FORMS}: its port '65536' is not a number"),
        ("h:x", f"endpoint 'h:x' is not {FORMS}: its port 'x' is not a number in 1-65535"),
        ("h:1/", f"endpoint 'h:1/' is not {FORMS}: its port '1/' is not a number"),
        ("a b:1", f"endpoint 'a b:1' is not {FORMS}: 'a b' is not a host name or IP address"),
    ],
)
def test_anything_else_is_one_line_naming_the_forms(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_address(text)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_the_message_names_where_the_address_came_from() -> None:
    with pytest.raises(ConfigError, match=r"^--controller 'http://ctl:1' is a URL"):
        parse_address("http://ctl:1", "--controller")
