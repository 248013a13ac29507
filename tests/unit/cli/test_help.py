"""`--help` shows every command in a fixed order and keeps every word of its help."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main

from gpucost.cli.app import app
from support.cli import gpucost

pytestmark = pytest.mark.unit

# "[producers]", "[default: ./gpucost.toml]": words in brackets that a markup parser
# would take for tags and drop.
BRACKETED = re.compile(r"\[[^\[\]\n]+\]")
ORDER = ["init", "up", "verify", "status", "ssh", "logs", "produce", "report", "replay", "down"]


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and sub-command, with the words that reach it."""
    yield path, command
    # Typer ships its own copy of click: a group is whatever has sub-commands.
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, (*path, name))


def help_texts(command: Any) -> list[str]:
    """The command's docstring and its options' and arguments' help."""
    return [command.help or "", *(getattr(p, "help", None) or "" for p in command.params)]


def flat(text: str) -> str:
    """Help as one line of words: no box borders, no wrapping."""
    return " ".join(text.replace("│", " ").split())


COMMANDS = list(walk(typer.main.get_command(app)))


def test_the_commands_are_listed_in_a_fixed_order(monkeypatch: pytest.MonkeyPatch) -> None:
    assert [name for name, _ in COMMANDS[1:]] == [(name,) for name in ORDER]
    out = gpucost(monkeypatch, "--help")
    assert out.code == 0, out.stderr
    shown = [name for name in re.findall(r"^\W*(\w+)\s", out.stdout, re.M) if name in ORDER]
    assert shown == ORDER


def test_some_help_has_bracketed_words() -> None:
    # The test below must have something to check, or it could not fail.
    assert any(BRACKETED.search(t) for _, c in COMMANDS for t in help_texts(c))


@pytest.mark.parametrize(
    ("path", "command"),
    COMMANDS,
    ids=[" ".join(path) or "gpucost" for path, _ in COMMANDS],
)
def test_bracketed_words_survive_into_help(
    monkeypatch: pytest.MonkeyPatch, path: tuple[str, ...], command: Any
) -> None:
    out = gpucost(monkeypatch, *path, "--help")
    assert out.code == 0, out.stderr
    shown = flat(out.stdout)
    for text in help_texts(command):
        for word in BRACKETED.findall(text):
            assert flat(word) in shown, f"`gpucost {' '.join(path)} --help` lost {word}"
