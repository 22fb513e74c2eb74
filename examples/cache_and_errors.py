# A cached task and Flyte's error handling: a child's exception is caught by
# its Flyte name and code, retries are paced by a backoff, and a task that must
# not be retried says so. Run it twice: the second run answers from the cache.
# Run it: python examples/cache_and_errors.py
from datetime import timedelta

import reuse_runtime as flyte  # was: import flyte

env = flyte.TaskEnvironment(
    name="cache_and_errors",
    reusable=flyte.ReusePolicy(replicas=2, concurrency=4),
)

@env.task(cache="auto")
async def expensive(n: int) -> int:
    print(f"computing expensive({n})")
    return sum(i * i for i in range(n))


@env.task(
    retries=flyte.RetryStrategy(count=3, backoff=flyte.Backoff(base=timedelta(seconds=0.2)))
)
async def flaky() -> str:
    attempt = flyte.ctx().attempt_number  # 0 for the first attempt
    if attempt < 2:
        raise ConnectionError(f"attempt {attempt} failed")
    return f"succeeded on attempt {attempt}"


@env.task
async def validate(x: int) -> int:
    if x < 0:
        raise ValueError(f"{x} is negative")
    return x


@env.task(retries=5)
async def give_up() -> None:
    raise flyte.errors.NonRecoverableError("bad configuration: no retry helps")


@env.task
async def main() -> list[str]:
    report = [f"expensive: {await expensive(1000)}", await flaky()]
    try:
        await validate(-1)
    except flyte.errors.RuntimeUserError as e:
        if e.code == "ValueError":
            report.append(f"caught {e.code}: {e}")
    try:
        await give_up()
    except flyte.errors.NonRecoverableError as e:
        report.append(f"gave up at once: {e}")
    for line in report:
        print(line)
    return report


if __name__ == "__main__":
    flyte.init_from_config()
    r = flyte.run(main)
    print(r.name)
    print(r.url)
