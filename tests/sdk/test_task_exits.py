"""sys.exit() or KeyboardInterrupt in a task: a task error, never the caller's exit."""

from __future__ import annotations

from pathlib import Path

from tests.sdk.test_run import run_script


def test_exits_in_tasks_are_task_errors_and_the_driver_goes_on(tmp_path: Path) -> None:
    done = run_script(
        tmp_path,
        """
        import sys

        @env.task
        async def exits(code: int) -> None:
            sys.exit(code)

        @env.task
        def exits_in_a_thread(code: int) -> None:
            sys.exit(code)

        @env.task
        async def interrupted() -> None:
            raise KeyboardInterrupt

        @env.task
        async def generator_exit() -> None:
            raise GeneratorExit("closing")

        @env.task
        async def parent() -> str:
            try:
                await exits(5)
            except flyte.TaskFailedError as e:
                return f"parent caught: {e}"
            return "parent saw nothing"

        if __name__ == "__main__":
            cases = [
                (exits, (0,)), (exits, (3,)), (exits_in_a_thread, (4,)),
                (interrupted, ()), (generator_exit, ()),
            ]
            for task, args in cases:
                try:
                    flyte.run(task, *args).outputs()
                    print("no error")
                except flyte.TaskFailedError as e:
                    print("task error:", e)
            print(flyte.run(parent).outputs()[0])
            print("driver goes on")
        """,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == [
        "task error: task exits failed: builtins.SystemExit: the task called sys.exit(0); "
        "a task cannot exit its caller",
        "task error: task exits failed: builtins.SystemExit: the task called sys.exit(3); "
        "a task cannot exit its caller",
        "task error: task exits_in_a_thread failed: builtins.SystemExit: the task called "
        "sys.exit(4); a task cannot exit its caller",
        "task error: task interrupted failed: builtins.KeyboardInterrupt: the task raised "
        "KeyboardInterrupt",
        "task error: task generator_exit failed: builtins.GeneratorExit: the task raised "
        "GeneratorExit: closing",
        "parent caught: task exits failed: builtins.SystemExit: the task called sys.exit(5); "
        "a task cannot exit its caller",
        "driver goes on",
    ], done.stdout + done.stderr
