# Pass data between tasks as flyte.io.File instead of pickled values: one task
# writes a CSV into the file store, another reads it back.
# Run it: python examples/files.py
import csv
import tempfile
from pathlib import Path

import reuse_runtime as flyte  # was: import flyte
from reuse_runtime.io import File  # was: from flyte.io import File

env = flyte.TaskEnvironment(
    name="files",
    reusable=flyte.ReusePolicy(replicas=2, concurrency=2),
)


@env.task
async def make_table(rows: int) -> File:
    path = Path(tempfile.mkdtemp()) / "squares.csv"
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["n", "square"])
        writer.writerows((i, i * i) for i in range(rows))
    return await File.from_local(path)


@env.task
async def total(table: File) -> int:
    async with table.open("r") as fh:
        text = await fh.read()
    return sum(int(row["square"]) for row in csv.DictReader(text.splitlines()))


@env.task
async def main(rows: int) -> int:
    table = await make_table(rows)
    result = await total(table)
    print(f"{table.name}: the squares of 0..{rows - 1} add up to {result}")
    return result


if __name__ == "__main__":
    flyte.init_from_config()
    r = flyte.run(main, rows=10)
    print(r.name)
    print(r.url)
