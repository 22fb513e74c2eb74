# One base environment, cloned for a heavier stage, and a run started with its
# own name, environment variables and custom context.
# Run it: python examples/clone_and_runcontext.py
import os

import reuse_runtime as flyte  # was: import flyte

base = flyte.TaskEnvironment(
    name="base",
    resources=flyte.Resources(cpu=1, memory="500Mi"),
    reusable=flyte.ReusePolicy(replicas=1, concurrency=4),
)
heavy = base.clone_with(
    "heavy",
    resources=flyte.Resources(cpu=2, memory="1Gi"),
    reusable=flyte.ReusePolicy(replicas=2, concurrency=1),
)


@heavy.task
def crunch(n: int) -> int:
    return sum(range(n))


@base.task
async def main(n: int) -> str:
    ctx = flyte.ctx()
    total = await crunch.aio(n)
    stage = os.environ.get("STAGE", "unset")
    owner = flyte.get_custom_context().get("owner", "nobody")
    line = f"run {ctx.action.run_name}: crunch({n}) = {total} (stage {stage}, owner {owner})"
    print(line)
    return line


if __name__ == "__main__":
    flyte.init_from_config()
    r = flyte.with_runcontext(
        name=f"clone-demo-{os.getpid()}",
        env_vars={"STAGE": "demo"},
        custom_context={"owner": "data-team"},
    ).run(main, n=1000)
    print(r.name)
    print(r.url)
