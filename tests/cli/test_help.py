"""Every command's help is plain text with help on every option, and the README lists them."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

from promptline.cli import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"
MARKUP = re.compile(r"``|:(mod|class|func|meth|attr):`")


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser under ``parser`` with its command path, leaves and parents alike."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _commands(child, (*path, name))


def _leaves() -> list[tuple[str, ...]]:
    return [
        path
        for path, parser in _commands(build_parser())
        if not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
    ]


def test_every_option_and_argument_has_help() -> None:
    missing = [
        f"{' '.join(path)} {action.dest}"
        for path, parser in _commands(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction | argparse._HelpAction)
        and not action.help
    ]
    assert missing == []


def test_help_is_plain_text_with_a_description() -> None:
    for path, parser in _commands(build_parser()):
        text = parser.format_help()
        assert MARKUP.search(text) is None, (path, text)
        assert parser.description, path


def test_the_readme_table_names_every_command() -> None:
    table = README.read_text().split("## The command line", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `promptline ")]
    commands = [row.split("`")[1].replace("\\|", "|") for row in rows]
    leaves = _leaves()
    assert len(leaves) > 15  # admin's ten, dead-letters' two, serve, worker, migrate, stack
    for leaf in leaves:
        wanted = "promptline " + " ".join(leaf)
        assert any(command.startswith(wanted) for command in commands), wanted
    # stack takes its action as an argument: each one is named on its row
    [stack] = [command for command in commands if command.startswith("promptline stack")]
    assert {"up", "down", "status"} <= set(stack.split()[-1].split("|"))
