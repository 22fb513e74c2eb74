"""The committed generated code must match protos/: regenerate and compare."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from tests.helpers import ROOT


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("generate", ROOT / "protos" / "generate.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    generate.generate(tmp_path)
    produced = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert produced, "protoc produced nothing"
    for relative in produced:
        committed = ROOT / "src" / relative
        assert committed.exists(), f"{relative} is not committed; run python protos/generate.py"
        assert committed.read_bytes() == (tmp_path / relative).read_bytes(), (
            f"{relative} is out of date with protos/; run `{sys.executable} protos/generate.py`"
        )
