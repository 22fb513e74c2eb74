"""``init`` and ``init_from_config``: the config file read strictly (bug 4 of issue 11),
and Flyte's settings accepted with a warning."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import reuse_runtime as flyte
from reuse_runtime.sdk import ignored, runtime


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
    with pytest.warns(flyte.ReuseRuntimeWarning, match="dns:///demo.hosted"):
        flyte.init(endpoint="dns:///demo.hosted.unionai.cloud")
    assert runtime._config.endpoint is None
    with pytest.warns(flyte.ReuseRuntimeWarning, match=r"init\(api_key=...\)"):
        flyte.init(api_key="xyz", project="p", domain="development")
    with pytest.raises(TypeError, match="endpont"):
        flyte.init(endpont="h:1")  # type: ignore[call-arg]
