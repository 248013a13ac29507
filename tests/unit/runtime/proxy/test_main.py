"""`gpucost-proxy` at the edge: bad settings are one line and exit 2, never a traceback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

GOOD = {"PROXY_UPSTREAMS": "http://127.0.0.1:9@gpu1:0", "KAFKA_BOOTSTRAP": "127.0.0.1:9092"}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PROXY_", "KAFKA_"))}
    return subprocess.run(
        [sys.executable, "-m", "gpucost.runtime.proxy.main", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_help() -> None:
    done = run({}, "--help")
    assert done.returncode == 0
    assert "PROXY_UPSTREAMS" in done.stdout


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({}, ["PROXY_UPSTREAMS", "PROXY_KAFKA_BOOTSTRAP"]),
        ({**GOOD, "PROXY_UPSTREAMS": "ftp://nowhere"}, ["PROXY_UPSTREAMS"]),
        ({**GOOD, "PROXY_PORT": "70000"}, ["PROXY_PORT"]),
        ({**GOOD, "PROXY_DELIVERY_TIMEOUT_S": "0"}, ["PROXY_DELIVERY_TIMEOUT_S"]),
    ],
)
def test_bad_settings_are_one_line(env: dict[str, str], names: list[str]) -> None:
    done = run(env)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    line = done.stderr.strip()
    assert "\n" not in line
    for name in names:
        assert name in line


def test_a_keys_file_others_can_read_is_refused(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"sk-secret-key": "team-a"}))
    keys.chmod(0o644)
    done = run({**GOOD, "PROXY_TENANT_KEYS_FILE": str(keys), "PROXY_SPOOL_DIR": str(tmp_path)})
    assert done.returncode == 2
    assert "chmod 600" in done.stderr
    assert "sk-secret-key" not in done.stderr
