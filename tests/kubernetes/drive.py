"""A client of the kubernetes suite's controller: ``python -m tests.kubernetes.drive WHAT ...``.

It runs in its own process (as a user's program does), with
``$REUSE_RUNTIME_ENDPOINT`` and ``$REUSE_RUNTIME_TOKEN`` pointing at the
controller, and prints one JSON line: the outputs, or the error.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import reuse_runtime as flyte
from tests.kubernetes import tasks


def main(argv: list[str]) -> int:
    what, args = argv[0], [float(a) if "." in a else int(a) for a in argv[1:]]
    flyte.init_from_config()
    runs: list[Any]
    if what == "greet":
        runs = [flyte.run(tasks.greet_all, n=int(args[0]))]
    elif what == "nap":
        count, seconds = int(args[0]), float(args[1])
        runs = [flyte.run(tasks.nap, i=i, seconds=seconds) for i in range(count)]
        print(json.dumps({"submitted": count}), flush=True)
    elif what == "allocate":
        runs = [flyte.run(tasks.allocate, mib=int(args[0]))]
    else:
        raise SystemExit(f"unknown: {what}")
    results: list[Any] = []
    for run in runs:
        run.wait(quiet=True)
        try:
            outputs = run.outputs()  # Flyte's ActionOutputs: a tuple of the outputs
            results.append({"ok": list(outputs) if what == "nap" else outputs[0]})
        except Exception as exc:
            results.append({"error": type(exc).__name__, "message": str(exc)})
    print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
