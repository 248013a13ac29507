"""Every command has help text, an example, and a place in the README."""

from pathlib import Path

import pytest
import typer.main

from gpucost.cli.app import app

pytestmark = pytest.mark.unit

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()


def commands() -> list[tuple[str, str]]:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.main.TyperGroup)
    return [(name, cmd.help or "") for name, cmd in group.commands.items()]


@pytest.mark.parametrize(("name", "help_text"), commands())
def test_command_has_help_with_an_example(name: str, help_text: str) -> None:
    assert help_text.strip(), f"{name} has no help"
    assert "Example:" in help_text, f"{name} help has no Example:"


@pytest.mark.parametrize(("name", "help_text"), commands())
def test_command_is_in_the_readme(name: str, help_text: str) -> None:
    assert f"gpucost {name}" in README, f"`gpucost {name}` is not in README.md"
