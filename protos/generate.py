"""Regenerate the Python code for the protos under ``protos/``.

Run from anywhere: ``python protos/generate.py [OUT_DIR]``. OUT_DIR defaults to
``src/``; the proto paths mirror the package path, so the generated modules land
in ``src/reuse_runtime/wire/v1/`` and import each other absolutely.
``tests/wire/test_generated.py`` regenerates into a temporary folder and fails
when the committed code is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

PROTOS = Path(__file__).resolve().parent


def generate(out_dir: Path) -> None:
    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else PROTOS.parent / "src")
