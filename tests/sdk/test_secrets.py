"""``flyte.Secret``: resolved here from the environment or a secrets file; never shown."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import reuse_runtime as flyte
from reuse_runtime.sdk.secrets import resolve, resolve_all, secrets_from_request
from tests.helpers import run_python


def test_names_follow_flyte() -> None:
    assert flyte.Secret("openai-key").as_env_var == "OPENAI_KEY"
    assert flyte.Secret("key", group="team").as_env_var == "TEAM_KEY"
    assert flyte.Secret("k", as_env_var="MY_K").as_env_var == "MY_K"
    with pytest.raises(ValueError, match="environment variable name"):
        flyte.Secret("k", as_env_var="lower-case")
    assert [s.key for s in secrets_from_request(["a", flyte.Secret("b")])] == ["a", "b"]
    with pytest.raises(TypeError):
        secrets_from_request(3)  # type: ignore[arg-type]


def test_a_mounted_secret_gets_no_derived_name_as_in_flyte(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flyte derives ``as_env_var`` only when neither ``mount`` nor ``as_env_var`` is given:
    a group that is no variable name (an AWS ARN) is fine for a mounted secret."""
    arn = "arn:aws:secretsmanager:us-east-2:0123456789:secret"
    with pytest.warns(flyte.ReuseRuntimeWarning, match="mount"):
        mounted = flyte.Secret(group=arn, key="V2-TEST", mount=Path("/etc/flyte/secrets"))
    assert mounted.as_env_var is None
    monkeypatch.setenv("V2_TEST", "from-env")
    assert resolve_all([mounted]) == {"V2_TEST": "from-env"}
    with pytest.raises(ValueError, match="environment variable name"):
        flyte.Secret(group=arn, key="K")


def test_values_come_from_the_environment_then_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REUSE_RUNTIME_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("API_TOKEN", "from-env")
    assert resolve(flyte.Secret("api-token")) == "from-env"
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "db").write_text("from-file\n")
    assert resolve(flyte.Secret("db", group="team")) == "from-file"
    with pytest.raises(flyte.errors.SecretNotFoundError) as missing:
        resolve(flyte.Secret("nowhere"))
    assert "$NOWHERE" in str(missing.value) and str(tmp_path / "nowhere") in str(missing.value)


def test_tasks_read_their_secrets_and_nothing_shows_them(tmp_path: Path) -> None:
    done = run_python(
        tmp_path,
        textwrap.dedent(
            """
            import os
            import reuse_runtime as flyte

            env = flyte.TaskEnvironment(
                name="secretive",
                secrets=[flyte.Secret("openai-key", as_env_var="OPENAI_API_KEY"), "db-pass"],
                reusable=flyte.ReusePolicy(replicas=1),
            )

            @env.task
            async def use() -> list:
                return [os.environ["OPENAI_API_KEY"], os.environ["DB_PASS"]]

            missing = flyte.TaskEnvironment(name="missing", secrets="not-set")

            @missing.task
            async def needs() -> None: ...

            if __name__ == "__main__":
                r = flyte.run(use)
                print(r.outputs()[0])
                print(repr(use.environment_spec()))
                try:
                    flyte.run(needs)
                except flyte.errors.SecretNotFoundError as e:
                    print("refused:", e)
            """
        ),
        OPENAI_API_KEY="sk-test-123",
        DB_PASS="hunter2",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "['sk-test-123', 'hunter2']"
    assert "sk-test-123" not in lines[1] and "hunter2" not in lines[1]
    assert lines[2].startswith("refused: secret 'not-set' is not set: set $NOT_SET")
    logs = "".join(p.read_text() for p in (tmp_path / "home").rglob("*.log"))
    assert "sk-test-123" not in logs and "hunter2" not in logs
