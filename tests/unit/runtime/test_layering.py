"""The runtime (what runs in the containers) depends on neither the CLI nor the
deploy: importing every runtime module loads no gpucost.cli, gpucost.remote or
gpucost.report module."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.unit

IMPORT_ALL = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    import gpucost.runtime
    names = [m.name for m in pkgutil.walk_packages(gpucost.runtime.__path__, "gpucost.runtime.")]
    for name in names:
        importlib.import_module(name)
    print(json.dumps({
        "imported": names,
        "outside": sorted(
            m for m in sys.modules
            if m.startswith(("gpucost.cli", "gpucost.remote", "gpucost.report"))
        ),
    }))
    """
)


def test_runtime_imports_neither_cli_nor_remote_nor_report() -> None:
    # A fresh interpreter: in this one other tests have imported everything.
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL], capture_output=True, text=True, check=True
    ).stdout
    seen = json.loads(out)
    assert {"gpucost.runtime.producer_main", "gpucost.runtime.processor_main"} <= set(
        seen["imported"]
    )
    assert seen["outside"] == []
