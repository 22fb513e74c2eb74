"""The fenced code blocks of the README and docs/, with their test markers and expected output.

A block runs by its language:

* ``python``: a script, in a directory of its page's own (later blocks of the page see the
  files earlier ones wrote);
* ``bash``: ``bash -euo pipefail``, in a copy of the repository, with this interpreter's
  ``bin`` first on ``PATH``;
* ``toml``: read as a config file, strictly (``reuse_runtime.sdk.config.read_config``);
* ``yaml``: parsed;
* ``output`` (shown as text): the stdout of the python or bash block just before it,
  where a line ``...`` stands for any lines and ``...`` inside a line for any text;
* ``text``: not code (a layout, a log line), never run.

An HTML comment on the line above a block changes that:

* ``<!-- test: file NAME -->``: write the block to ``NAME`` in the page's directory;
* ``<!-- test: pytest -->``: run the block with pytest there;
* ``<!-- test: container -->``: run it in the container suite (``-m container``);
* ``<!-- test: ci WHY -->``: a command ``.ci/run`` runs itself: check that it does;
* ``<!-- test: same PAGE -->``: the same commands as a block of PAGE (which runs them):
  check that they are;
* ``<!-- test: skip WHY -->``: not run; the test is reported skipped, with WHY.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN = ("python", "bash")
LANGUAGES = frozenset({"python", "bash", "toml", "yaml", "output", "text"})
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)\s*$")
_MARKER = re.compile(r"^\s*<!--\s*test:\s*(?P<kind>[\w-]+)\s*(?P<arg>.*?)\s*-->\s*$")
MARKERS = frozenset({"file", "pytest", "container", "ci", "same", "skip"})


@dataclass
class Block:
    page: Path
    #: 1-based line of the opening fence.
    line: int
    lang: str
    code: str
    #: ``(kind, argument)`` of the marker above it, if any.
    marker: tuple[str, str] | None = None
    #: The ``output`` block that follows it, if any.
    output: Block | None = None

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    """README.md, then every page under docs/, in name order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(page: Path) -> list[Block]:
    """The page's fenced blocks, each ``output`` block attached to the one before it."""
    lines = page.read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != fence:
            line = lines[i]
            body.append(line[indent:] if not line[:indent].strip() else line)
            i += 1
        if i == len(lines):
            raise ValueError(f"{page}:{start + 1}: the block never closes")
        i += 1
        marker = None
        above = start - 1
        while above >= 0 and not lines[above].strip():
            above -= 1
        if above >= 0 and (match := _MARKER.match(lines[above])):
            marker = (match["kind"], match["arg"])
        block = Block(page, start + 1, opening["lang"], "\n".join(body) + "\n", marker)
        if block.lang == "output" and found and found[-1].lang in RUN:
            found[-1].output = block
        found.append(block)
    return found


def matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` fits ``expected``, whose ``...`` stands for anything (see above)."""
    pattern = []
    for line in expected.strip("\n").splitlines():
        if line.strip() == "...":
            pattern.append(r"(?:.*\n)*?")
        else:
            text = ".*?".join(re.escape(part) for part in line.rstrip().split("..."))
            pattern.append(text + r"[ \t]*\n")
    actual = "\n".join(line.rstrip() for line in actual.strip("\n").splitlines()) + "\n"
    return re.fullmatch("".join(pattern), actual) is not None
