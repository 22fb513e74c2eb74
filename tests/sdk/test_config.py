"""``init`` and ``init_from_config``: the config file read strictly (bug 4 of issue 11),
Flyte's settings accepted with a warning, and its endpoints as ours (item 7 of issue 28)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import reuse_runtime as flyte
from reuse_runtime.sdk import ignored, runtime
from tests.controller import tasks


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    ignored._seen.clear()
    yield
    flyte.init()  # back to the embedded default, for the tests after


def _write(tmp_path: Path, text: str, name: str = "cfg.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_misspelled_section_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, '# settings\n\n[controler]\nendpoint = "127.0.0.1:50050"\n')
    with pytest.raises(flyte.errors.ConfigError) as raised:
        flyte.init_from_config(path)
    assert str(raised.value).startswith(f"{path}:3: unknown section [controler]")
    assert "did you mean 'controller'?" in str(raised.value)


def test_unknown_settings_and_wrong_types_name_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, '[controller]\nendpoint = "h:1"\nmax_backlg = 5\n')
    with pytest.raises(ValueError, match=rf"{path}:3: unknown setting 'max_backlg'"):
        flyte.init_from_config(path)
    path = _write(tmp_path, "[controller]\nmax_backlog = 'many'\n")
    with pytest.raises(ValueError, match=rf"{path}:2: \[controller\] max_backlog must be an int"):
        flyte.init_from_config(path)
    path = _write(tmp_path, "[controller\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        flyte.init_from_config(path)
    with pytest.raises(ValueError, match="does not exist"):
        flyte.init_from_config(tmp_path / "missing.toml")


def test_a_good_config_sets_the_endpoint(tmp_path: Path) -> None:
    path = _write(tmp_path, '[controller]\nendpoint = "127.0.0.1:50999"\nmax_backlog = 7\n')
    flyte.init_from_config(path)
    assert runtime._config.endpoint == "127.0.0.1:50999" and runtime._config.max_backlog == 7


def test_flyte_configs_and_backend_settings_are_accepted_with_a_warning(tmp_path: Path) -> None:
    with pytest.warns(flyte.ReuseRuntimeWarning, match="Flyte config 'config.yaml'"):
        flyte.init_from_config("config.yaml")
    assert runtime._config.endpoint is None
    with pytest.warns(flyte.ReuseRuntimeWarning, match=r"init\(api_key=...\)"):
        flyte.init(api_key="xyz", project="p", domain="development")
    with pytest.raises(TypeError, match="endpont"):
        flyte.init(endpont="h:1")  # type: ignore[call-arg]


def test_flytes_endpoint_names_our_controller_and_a_url_fails_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flyte users write ``flyte.init(endpoint="dns:///localhost:8090")``: every place an
    endpoint is given reads it the same way, and a URL is refused with the forms."""
    flyte.init(endpoint="dns:///localhost:8090")  # no warning: it is ours
    assert runtime._config.endpoint == "localhost:8090"
    flyte.init(endpoint="[::1]:50050")
    assert runtime._config.endpoint == "[::1]:50050"
    with pytest.raises(flyte.errors.ConfigError) as raised:
        flyte.init(endpoint="http://localhost:8090")
    assert str(raised.value) == (
        "endpoint 'http://localhost:8090' is a URL, and a controller speaks gRPC, not HTTP: "
        "give HOST:PORT or dns:///HOST:PORT, for example localhost:8090"
    )
    with pytest.raises(flyte.errors.ConfigError, match=r"^endpoint 'localhost' has no port"):
        flyte.init(endpoint="localhost")

    monkeypatch.setenv("REUSE_RUNTIME_ENDPOINT", "dns:///ctl.team.svc:50050")
    flyte.init()
    assert runtime._config.endpoint == "ctl.team.svc:50050"
    monkeypatch.setenv("REUSE_RUNTIME_ENDPOINT", "https://ctl.team.svc")
    with pytest.raises(
        flyte.errors.ConfigError, match=r"^\$REUSE_RUNTIME_ENDPOINT 'https://ctl.team.svc' is a URL"
    ):
        flyte.init()
    monkeypatch.delenv("REUSE_RUNTIME_ENDPOINT")

    path = _write(tmp_path, '[controller]\nendpoint = "dns:///10.0.0.5:50050"\n')
    flyte.init_from_config(path)
    assert runtime._config.endpoint == "10.0.0.5:50050"
    path = _write(tmp_path, '[controller]\nmax_backlog = 5\nendpoint = "https://10.0.0.5"\n')
    with pytest.raises(flyte.errors.ConfigError) as raised:
        flyte.init_from_config(path)
    assert str(raised.value).startswith(
        f"{path}:3: [controller] endpoint 'https://10.0.0.5' is a URL, and a controller "
        f"speaks gRPC, not HTTP: give HOST:PORT or dns:///HOST:PORT, for example 10.0.0.5:50050"
    )


def test_a_run_at_an_endpoint_where_nothing_listens_fails_in_about_a_second() -> None:
    with socket.socket() as held:  # bound, not listening: connections are refused
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        flyte.init(endpoint=f"dns:///127.0.0.1:{port}")
        started = time.monotonic()
        with pytest.raises(flyte.errors.ControllerUnavailableError) as raised:
            flyte.run(tasks.child, 1)
        took = time.monotonic() - started
    assert str(raised.value).startswith(
        f"nothing listens on 127.0.0.1:{port} (connection refused): is the controller running?"
    )
    assert took < 5, took  # not the 10 s a controller that does not answer gets
