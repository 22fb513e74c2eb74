"""`Resources`: flyte's signature and forms, parsed to cores and bytes."""

from __future__ import annotations

import pytest

import reuse_runtime as flyte
from reuse_runtime.errors import PolicyError
from reuse_runtime.resources import Resources, parse_cpu


def test_flyte_forms_parse_to_cores_and_bytes() -> None:
    limits = Resources(cpu="500m", memory="1Gi").limits()
    assert (limits.cpu_request, limits.cpu_limit) == (0.5, 0.5)
    assert limits.memory_limit == 2**30 and limits.memory_text == "1Gi"
    ranged = Resources(cpu=(1, 2), memory=("1Gi", "2Gi"), shm="auto", disk="10Gi").limits()
    assert (ranged.cpu_request, ranged.cpu_limit) == (1.0, 2.0)
    assert (ranged.memory_request, ranged.memory_limit) == (2**30, 2**31)
    assert ranged.shm == "auto" and ranged.disk == 10 * 2**30
    assert Resources(gpu="T4:2").limits().gpu == 2
    assert Resources(gpu=1).limits().gpu == 1
    assert parse_cpu("2") == 2.0 and parse_cpu(0.25) == 0.25


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cpu": "lots"}, "Resources.cpu"),
        ({"cpu": -1}, "greater than or equal to 0"),
        ({"cpu": (1, 2, 3)}, "exactly two"),
        ({"cpu": (2, 1)}, "above its limit"),
        ({"memory": "1 gigabyte"}, "Resources.memory"),
        ({"memory": ("2Gi", "1Gi")}, "above its limit"),
        ({"gpu": "T4"}, "Resources.gpu"),
        ({"gpu": True}, "Resources.gpu"),
        ({"shm": "huge"}, "Resources.shm"),
    ],
)
def test_bad_values_raise_naming_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        Resources(**kwargs)  # type: ignore[arg-type]


def test_wire_round_trip_and_environment() -> None:
    resources = Resources(cpu=(1, 2), memory="200Mi", shm="64Mi")
    assert Resources.from_wire(resources.to_wire()) == resources
    assert Resources.from_wire("") == Resources()
    with pytest.raises(PolicyError, match="unknown resources"):
        Resources.from_wire('{"cores": 1}')
    env = flyte.TaskEnvironment(name="r", resources=resources)
    assert Resources.from_wire(env.spec().resources) == resources
    with pytest.raises(TypeError, match="Expected resources to be of type Resources"):
        flyte.TaskEnvironment(name="r2", resources={"cpu": 1})  # type: ignore[arg-type]
