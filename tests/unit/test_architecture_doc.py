"""docs/architecture.md names every field the processor writes, in both collections."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from gpucost.runtime.cost import WindowCost

pytestmark = pytest.mark.unit

DOC = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text()
WINDOW_EXTRAS = ("node", "price_per_hour_usd", "updated_at", "revision")
"""Set by the processor around `WindowCost.to_dict()` (runtime/processor.py, mongo.py)."""


def section(title: str) -> str:
    start = DOC.index(f"### `{title}`")
    end = DOC.index("\n### ", start + 1)
    return DOC[start:end]


def documented(title: str) -> set[str]:
    """Every `name` in the first column of the section's table."""
    names: set[str] = set()
    for line in section(title).splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return names


def test_gpu_metrics_fields_are_documented() -> None:
    written = {f.name for f in fields(WindowCost)} | set(WINDOW_EXTRAS)
    assert written <= documented("gpu_metrics")


def test_token_usage_fields_are_documented() -> None:
    # The fields `gpucost report` and the cost rules rely on.
    relied_on = {
        "_id", "event_id", "ts", "window_start", "window_s", "gpu", "node", "model",
        "prompt_tokens", "completion_tokens", "total_tokens", "costed",
        "cost_per_token", "allocated_cost_usd",
    }  # fmt: skip
    assert relied_on <= documented("token_usage")


def test_firewall_matrix_names_every_port_of_the_topology() -> None:
    for port in ("22", "8080", "9092", "27017", "2181"):
        assert port in DOC


SRC = Path(__file__).resolve().parents[2] / "src" / "gpucost"


def mapped() -> list[str]:
    """The paths the "Package map" names, in order: `x.py` for a module, `x/` for a package."""
    section = DOC[DOC.index("## Package map") :]
    return re.findall(r"^\s*- `([A-Za-z0-9_/.]+)`", section, re.M)


def tree() -> set[str]:
    """Every package (as `dir/`) and module of src/gpucost; an `__init__.py` is its package."""
    found = set()
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC)
        if path.name == "__init__.py":
            if relative.parent != Path("."):
                found.add(f"{relative.parent.as_posix()}/")
        else:
            found.add(relative.as_posix())
    return found


def test_package_map_matches_the_tree() -> None:
    listed = mapped()
    assert len(listed) == len(set(listed)), "a path is listed twice"
    missing = sorted(tree() - set(listed))
    stale = sorted(set(listed) - tree())
    assert (missing, stale) == ([], []), "update the Package map in docs/architecture.md"


def test_package_map_lines_say_what_each_holds() -> None:
    section = DOC[DOC.index("## Package map") :]
    for line in section.splitlines():
        if line.lstrip().startswith("- `"):
            assert re.match(r"^\s*- `[^`]+`: \S", line), f"no description: {line!r}"
