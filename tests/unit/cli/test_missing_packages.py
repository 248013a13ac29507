"""A package a command needs but this install lacks: one line with the install, no
traceback."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from gpucost.cli.output import run_guarded
from gpucost.errors import ExitStatus
from gpucost.remote.providers import get_provider
from gpucost.runtime.trace import default_seed_path
from support.cli import gpucost, one_error_line

pytestmark = pytest.mark.unit


def _without(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make `import X` fail as it does where X is not installed."""
    for name in list(sys.modules):
        if name.partition(".")[0] in modules or name == "gpucost.remote.providers.aws":
            monkeypatch.delitem(sys.modules, name)
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)
    find_spec = importlib.util.find_spec

    def find(name: str, *args: Any) -> Any:
        return None if name.partition(".")[0] in modules else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find)


def test_png_without_matplotlib(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _without(monkeypatch, "matplotlib")
    png = tmp_path / "x.png"
    out = gpucost(
        monkeypatch, "replay", str(default_seed_path()), "--price-per-hour", "3", "--png", str(png)
    )
    assert out.code != 0
    line = one_error_line(out)
    assert "--png needs matplotlib" in line
    assert "pip install 'matplotlib>=3.8'" in line
    assert not png.exists()


def test_aws_provider_without_boto3(monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "boto3", "botocore")
    with pytest.raises(Exception, match="the aws provider needs boto3") as caught:
        get_provider("aws")
    assert "pip install 'boto3>=1.34'" in str(getattr(caught.value, "hint", ""))


@pytest.mark.parametrize(
    ("module", "package", "install"),
    [("paramiko", "paramiko", "paramiko>=3.4"), ("botocore.session", "boto3", "boto3>=1.34")],
)
def test_any_command_that_meets_a_missing_package(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    module: str,
    package: str,
    install: str,
) -> None:
    # Where a command imports on use (`gpucost ssh` loads paramiko), a missing package
    # is one line too, whichever module the import failed in.
    app = typer.Typer()

    @app.command()
    def needs() -> None:
        raise ModuleNotFoundError(f"No module named {module!r}", name=module)

    monkeypatch.setattr(sys, "argv", ["gpucost"])
    assert run_guarded(app) == ExitStatus.ERROR
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: this command needs {package}, which is not installed (pip install '{install}')"
    ]


def test_a_missing_module_we_do_not_know_is_a_bug_and_keeps_its_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = typer.Typer()

    @app.command()
    def broken() -> None:
        raise ModuleNotFoundError("No module named 'gpucost.nothing'", name="gpucost.nothing")

    monkeypatch.setattr(sys, "argv", ["gpucost"])
    with pytest.raises(ModuleNotFoundError):
        run_guarded(app)
