"""TaskEnvironment, @env.task and TaskTemplate: Flyte's arguments and attributes.

Bugs 4 and 7 of issue 11: a misspelled option is a TypeError naming it (never a
silent default), and a task is named ``<env>.<function>`` with Flyte's attributes.
"""

from __future__ import annotations

import asyncio
import warnings
from datetime import timedelta
from typing import Any

import pytest

import reuse_runtime as flyte
from reuse_runtime.sdk import ignored


@pytest.fixture(autouse=True)
def _fresh_warnings() -> None:
    ignored._seen.clear()


def test_misspelled_options_are_type_errors_naming_them() -> None:
    with pytest.raises(TypeError, match="reuseable"):
        flyte.TaskEnvironment(name="typo", reuseable=flyte.ReusePolicy(replicas=1))  # type: ignore[call-arg]
    env = flyte.TaskEnvironment(name="typo")
    with pytest.raises(TypeError, match="retires"):

        @env.task(retires=3)  # type: ignore[call-overload]
        async def f() -> None: ...

    with pytest.raises(TypeError, match="timout"):

        @env.task(timout=1)  # type: ignore[call-overload]
        async def g() -> None: ...

    @env.task
    async def h() -> None: ...

    with pytest.raises(TypeError, match="retrys"):
        h.override(retrys=2)
    with pytest.raises(ValueError, match="Name cannot be overridden"):
        h.override(name="x")


def test_misspellings_get_a_suggestion_in_the_error_shown() -> None:
    from reuse_runtime.sdk.excepthook import hint

    try:
        flyte.TaskEnvironment(name="typo", reuseable=None)  # type: ignore[call-arg]
    except TypeError as exc:
        assert hint(exc) == " (did you mean 'reusable'?)"
    try:
        flyte.ReusePolicy(replica=2)  # type: ignore[call-arg]
    except TypeError as exc:
        assert hint(exc) == " (did you mean 'replicas'?)"


def test_task_identity_and_attributes_match_flyte() -> None:
    env = flyte.TaskEnvironment(
        name="ident",
        resources=flyte.Resources(cpu=1, memory="1Gi"),
        reusable=flyte.ReusePolicy(replicas=2),
        cache="auto",
        env_vars={"A": "1"},
    )

    @env.task(retries=3, timeout=timedelta(seconds=5), short_name="sq")
    async def square(x: int) -> int:
        return x * x

    assert square.name == "ident.square"
    assert square.short_name == "sq"
    assert env.tasks == {"ident.square": square}
    assert square.resources == env.resources
    assert square.reusable is env.reusable
    assert isinstance(square.cache, flyte.Cache) and square.cache.behavior == "auto"
    assert square.retries == flyte.RetryStrategy(count=3)
    assert square.timeout == timedelta(seconds=5)
    assert square.parent_env is env and square.parent_env_name == "ident"
    assert square.max_inline_io_bytes == 10 * 1024 * 1024
    assert asyncio.run(square.forward(4)) == 16  # the plain function


def test_override_of_a_reusable_task_needs_reusable_off_for_env_settings() -> None:
    env = flyte.TaskEnvironment(name="reuse", reusable=flyte.ReusePolicy(replicas=2))

    @env.task
    async def t() -> None: ...

    for option in (
        {"resources": flyte.Resources(cpu=2)},
        {"env_vars": {"A": "1"}},
        {"secrets": "k"},
    ):
        with pytest.raises(ValueError, match="reusable='off'"):
            t.override(**option)  # type: ignore[arg-type]
    cold = t.override(reusable="off", resources=flyte.Resources(cpu=2), env_vars={"A": "1"})
    assert cold.reusable is None and cold.resources == flyte.Resources(cpu=2)
    assert cold.env_vars == {"A": "1"}
    assert t.reusable is env.reusable  # the original is untouched
    assert flyte.Resources.from_wire(cold.environment_spec().resources) == flyte.Resources(cpu=2)
    assert ("A", "1") in cold.environment_spec().env_vars
    assert not cold.environment_spec().policy.reusable


def test_pod_template_on_a_reusable_environment_is_refused_as_flyte_does() -> None:
    env = flyte.TaskEnvironment(name="pods", reusable=flyte.ReusePolicy(replicas=2))
    with pytest.raises(ValueError, match="pod_template"):

        @env.task(pod_template=flyte.PodTemplate(primary_container_name="main"))
        async def t() -> None: ...


def test_clone_with_inherits_and_overrides() -> None:
    base = flyte.TaskEnvironment(
        name="base",
        resources=flyte.Resources(cpu=1),
        env_vars={"A": "1"},
        reusable=flyte.ReusePolicy(replicas=2),
        description="the base",
    )
    other = flyte.TaskEnvironment(name="other")
    clone = base.clone_with("clone", cache="auto", env_vars={"B": "2"}, depends_on=[other])
    assert clone.name == "clone" and clone.resources == base.resources
    assert clone.reusable is base.reusable and clone.description == "the base"
    assert clone.env_vars == {"B": "2"} and clone.cache == "auto"
    assert clone.depends_on == [other] and base.depends_on == []
    assert base.clone_with("off", reusable=None).reusable is None
    with pytest.raises(TypeError, match="Unexpected keyword arguments"):
        base.clone_with("bad", reusabel=None)


def test_add_dependency_and_types_checked_as_flyte_does() -> None:
    a, b = flyte.TaskEnvironment(name="a"), flyte.TaskEnvironment(name="b")
    a.add_dependency(b)
    a.add_dependency(b)
    assert a.depends_on == [b]
    with pytest.raises(ValueError, match="self"):
        a.add_dependency(a)
    with pytest.raises(TypeError):
        flyte.TaskEnvironment(name="c", depends_on=["a"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        flyte.TaskEnvironment(name="c", resources={"cpu": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        flyte.TaskEnvironment(name="c", reusable=2)  # type: ignore[arg-type]
    env = flyte.TaskEnvironment(name="c", description="x" * 300, pod_template="gpu-pod")
    assert len(env.description or "") == 255 and env.pod_template == "gpu-pod"


def test_options_without_a_local_meaning_warn_once_naming_them() -> None:
    with pytest.warns(flyte.ReuseRuntimeWarning, match=r"TaskEnvironment\(queue=...\)"):
        env = flyte.TaskEnvironment(name="q", queue="gpu-queue")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flyte.TaskEnvironment(name="q2", queue="gpu-queue")  # said once per process
    with pytest.warns(flyte.ReuseRuntimeWarning, match="interruptible"):

        @env.task(interruptible=True)
        async def t() -> None: ...


def test_warnings_print_as_one_line() -> None:
    text = warnings.formatwarning(
        flyte.ReuseRuntimeWarning("queue has no effect"), flyte.ReuseRuntimeWarning, "x.py", 3
    )
    assert text == "reuse-runtime: warning: queue has no effect\n"


# Flyte's exception types and words (flyte-sdk's _environment.py and _task_environment.py):
# people's tests match on them.
_NAME = "Environment name '{}' must be in snake_case or kebab-case format."


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": "MyEnv"}, ValueError, _NAME.format("MyEnv")),
        ({"name": "my.env"}, ValueError, _NAME.format("my.env")),
        ({"name": "a--b"}, ValueError, _NAME.format("a--b")),
        ({"name": "-a"}, ValueError, _NAME.format("-a")),
        ({"name": ""}, ValueError, _NAME.format("")),
        ({"name": 5}, TypeError, "expected string or bytes-like object, got 'int'"),
        (
            {"name": "ok", "image": 5},
            TypeError,
            "Expected image to be of type str or Image, got <class 'int'>",
        ),
        (
            {"name": "ok", "secrets": 5},
            TypeError,
            "Expected secrets to be of type SecretRequest, got <class 'int'>",
        ),
        (
            {"name": "ok", "secrets": {"key": "k"}},
            TypeError,
            "Expected secrets to be of type SecretRequest, got <class 'dict'>",
        ),
        (
            {"name": "ok", "resources": {"cpu": 1}},
            TypeError,
            "Expected resources to be of type Resources, got <class 'dict'>",
        ),
        (
            {"name": "ok", "env_vars": [("A", "1")]},
            TypeError,
            "Expected env_vars to be of type Dict[str, str], got <class 'list'>",
        ),
        (
            {"name": "ok", "cache": 5},
            TypeError,
            "Expected cache to be of type str or Cache, got <class 'int'>",
        ),
        (
            {"name": "ok", "reusable": {"replicas": 2}},
            TypeError,
            "Expected reusable to be of type ReusePolicy, got <class 'dict'>",
        ),
        (
            {"name": "ok", "depends_on": ["other"]},
            TypeError,
            "Expected depends_on to be of type List[Environment], got <class 'str'>",
        ),
        (
            {"name": "ok", "pod_template": 5},
            TypeError,
            "Expected pod_template to be of type str or PodTemplate, got <class 'int'>",
        ),
        (
            {"name": "ok", "include": 5},
            TypeError,
            "Expected include to be a sequence of str paths, got <class 'int'>",
        ),
        # In Flyte's order: the image before the name, the name before reusable and cache.
        (
            {"name": "Bad", "image": 5},
            TypeError,
            "Expected image to be of type str or Image, got <class 'int'>",
        ),
        ({"name": "Bad", "cache": 5}, ValueError, _NAME.format("Bad")),
    ],
)
def test_a_bad_argument_raises_flytes_error_with_flytes_words(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        flyte.TaskEnvironment(**kwargs)
    assert str(raised.value) == message


def test_what_flyte_accepts_and_checks_later_is_accepted_and_checked_there() -> None:
    async def f(x: int) -> int:
        return x

    # Flyte checks a cache's behaviour when a task takes it, with Cache's ValueError.
    env = flyte.TaskEnvironment(name="lazy-cache", cache="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^Invalid cache behavior: 'sometimes'\. Must be one"):
        env.task(f)
    plain = flyte.TaskEnvironment(name="plain", cache=False, reusable=False)  # type: ignore[arg-type]
    assert plain.reusable is None
    with pytest.raises(ValueError, match=r"^Invalid cache behavior: False\."):
        plain.task(f)
    with pytest.raises(ValueError, match=r"^Invalid cache behavior: 5\."):
        flyte.TaskEnvironment(name="t5").task(cache=5)(f)  # type: ignore[call-overload]
    # cache=False on a task is the environment's cache.
    cached = flyte.TaskEnvironment(name="auto", cache="auto")
    assert cached.task(cache=False)(f).cache.is_enabled()  # type: ignore[call-overload]
    described = flyte.TaskEnvironment(name="long", description="x" * 300)
    assert described.description == "x" * 247 + "...(tr.)"
    assert flyte.TaskEnvironment(name="snake_case-and-kebab-2").name == "snake_case-and-kebab-2"
    with pytest.raises(ValueError, match="longer than 63 characters"):
        flyte.TaskEnvironment(name="a" * 64)


def test_add_dependency_raises_flytes_errors() -> None:
    env = flyte.TaskEnvironment(name="deps")
    with pytest.raises(TypeError) as raised:
        env.add_dependency("other")  # type: ignore[arg-type]
    assert str(raised.value) == "Expected Environment, got <class 'str'>"
    with pytest.raises(ValueError) as refused:
        env.add_dependency(flyte.TaskEnvironment(name="deps"))
    assert str(refused.value) == "Cannot add self as a dependency"
