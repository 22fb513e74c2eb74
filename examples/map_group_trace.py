# Fan out with flyte.map, label the calls with flyte.group, and record helper
# calls with flyte.trace, in Flyte's style: only the import differs.
# Run it: python examples/map_group_trace.py
import asyncio

import reuse_runtime as flyte  # was: import flyte

env = flyte.TaskEnvironment(
    name="map_group_trace",
    reusable=flyte.ReusePolicy(replicas=2, concurrency=10),
)


@flyte.trace
async def normalize(word: str) -> str:
    return word.strip().lower()


@env.task
async def score(word: str) -> int:
    clean = await normalize(word)
    return sum(ord(c) - ord("a") + 1 for c in clean if c.isalpha())


@env.task
def slope(x: int, m: int = 2) -> int:
    return m * x + 5


@env.task
async def main(words: list[str]) -> dict[str, int]:
    scores = [s async for s in flyte.map.aio(score, words, concurrency=4)]
    with flyte.group("lines"):
        lines = await asyncio.gather(*(slope.aio(len(w)) for w in words))
    result = {w: s + y for w, s, y in zip(words, scores, lines)}
    print(f"scored {len(result)} words: {result}")
    return result


if __name__ == "__main__":
    flyte.init_from_config()
    r = flyte.run(main, words=["Flyte ", "reuse", "Containers"])
    print(r.name)
    print(r.url)
