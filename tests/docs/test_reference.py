"""The generated reference pages are what the code makes of them today."""

from __future__ import annotations

import pytest

from tests.docs import reference


@pytest.mark.parametrize("name", sorted(reference.PAGES))
def test_the_committed_page_is_the_generated_one(name: str) -> None:
    committed = (reference.DOCS / name).read_text()
    assert committed == reference.PAGES[name](), (
        f"docs/{name} is stale: run `python -m tests.docs.reference` and commit the result"
    )


def test_the_configuration_page_lists_every_variable_and_key() -> None:
    from reuse_runtime import settings

    page = reference.configuration_page()
    for variable in settings.VARIABLES:
        assert f"| `{variable.name}` |" in page
    for key in settings.CONFIG:
        assert f"| `{key.key}` |" in page


def test_the_cli_page_has_every_command_and_option() -> None:
    import argparse

    from reuse_runtime.cli import build_parser

    page = reference.cli_page()
    for path, _, parser in reference._parsers(build_parser(), ("reuse-runtime",), ""):
        assert f"## `{' '.join(path)}`" in page
        for action in parser._actions:
            for flag in action.option_strings:
                if action.help != argparse.SUPPRESS and flag not in ("-h", "--help"):
                    assert f"`{flag}" in page or f", {flag}" in page, (path, flag)
