"""`gpucost produce` one-off producers, as the command lines they run on the VM."""

from __future__ import annotations

import json
import shlex
import threading
from pathlib import Path

from gpucost.remote.commands import produce_once
from gpucost.remote.ssh import Result


class RecordingConnection:
    """Answers every command with a producer's JSON summary and keeps the lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    @property
    def vm(self) -> str:
        return "vm4"

    def run(
        self, command: str, *, sudo: bool = False, timeout: float = 600, quiet: bool = False
    ) -> Result:
        with self._lock:
            self.lines.append(command)
        return Result(0, json.dumps({"sent": 10, "acked": 10, "failed": 0}) + "\n", "")

    def put_file(self, source: Path | bytes, remote: str, mode: int = 0o644) -> None:
        raise AssertionError("produce uploads nothing")

    def get_file(self, remote: str, local: Path) -> None:
        raise AssertionError("produce downloads nothing")

    def close(self) -> None:
        pass


def _marks(lines: list[str]) -> list[str]:
    marks = []
    for line in lines:
        argv = shlex.split(line)
        marks.append(argv[argv.index("--mark") + 1])
    return marks


def test_each_replica_gets_its_own_producer_name() -> None:
    conn = RecordingConnection()
    summaries = produce_once(conn, "gpucost:latest", rate=50, count=None, duration=5, replicas=2)
    assert len(summaries) == 2
    marks = _marks(conn.lines)
    assert sorted(marks) == ["gpucost-producer@vm4:once-1", "gpucost-producer@vm4:once-2"]


def test_a_callers_mark_is_kept_for_one_replica_and_numbered_for_more() -> None:
    one = RecordingConnection()
    produce_once(one, "gpucost:latest", rate=200, count=10, duration=None, mark="verify-1")
    assert _marks(one.lines) == ["verify-1"]
    two = RecordingConnection()
    produce_once(two, "img", rate=200, count=10, duration=None, mark="m", replicas=2)
    assert sorted(_marks(two.lines)) == ["m-1", "m-2"]


def test_ssh_and_logs_name_vms_and_listed_gpu_hosts() -> None:
    import pytest

    from gpucost.config.settings import load_config
    from gpucost.errors import InputError
    from gpucost.remote.commands import DEFAULT_SERVICE, SERVICES, host_name, role_of

    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHa0d3aG9zdGtleWZvcnRlc3RzMTIzNDU2Nzg5MA"
    config = load_config(
        use_file=False,
        provider="aws",
        admin_cidr="203.0.113.7/32",
        gpu_hosts=[{"name": "gpu-7", "address": "192.0.2.70", "host_key": key}],
    )
    assert host_name("vm3", config) == "vm3"
    assert host_name("gpu-7", config) == "gpu-7"
    with pytest.raises(InputError, match="gpu-8") as refused:
        host_name("gpu-8", config)
    assert "gpu-7" in (refused.value.hint or "")
    assert role_of(config, "vm4") == "producers"
    assert role_of(config, "gpu-7") == "gpu"
    assert "gpucost-agent" in SERVICES[DEFAULT_SERVICE["gpu"]]
