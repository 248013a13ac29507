"""The step runner against a real sshd: each step twice (the second changes
nothing), resume after a failure, and the order of waves across hosts."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from gpucost.inventory import VmName
from gpucost.remote.hostkeys import HostKeyStore
from gpucost.remote.runner import StepFailed, run_steps
from gpucost.remote.ssh import SshConnection, Target
from gpucost.remote.steps import SCRIPTS_DIR, SUPPORT_FILES, HostSteps, Step, Upload
from support.sshd import Sshd, host_for

APPEND = """#!/usr/bin/env bash
set -euo pipefail
[[ ! -e "${FAIL_IF:-/nonexistent}" ]] || { echo "line one"; echo "refusing: $FAIL_IF" >&2; exit 7; }
cat "$GPUCOST_WORKDIR/payload-$STEP" >/dev/null
echo "$STEP" >>"$JOURNAL"
sleep "${PAUSE:-0}"
touch "$DONE"
"""


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    directory = tmp_path / "scripts"
    directory.mkdir()
    for name in SUPPORT_FILES:
        shutil.copy(SCRIPTS_DIR / name, directory / name)
    (directory / "append.sh").write_text(APPEND)
    return directory


def step(name: str, wave: str, work: Path, **env: str) -> Step:
    done = work / f"{name}.done"
    return Step(
        name=name,
        roles=("kafka-zk",),
        wave=wave,  # type: ignore[arg-type]
        script="append.sh",
        env=(("STEP", name), ("JOURNAL", str(work / "journal")), ("DONE", str(done)),
             *env.items()),
        uploads=(Upload(f"payload-{name}", content=b"data", mode=0o600, secret=True),),
        check=f"test -f {done}",
    )  # fmt: skip


def runner(sshd: Sshd, store: HostKeyStore, scripts: Path, markers: Path):  # type: ignore[no-untyped-def]
    def connect(vm: VmName) -> SshConnection:
        target = Target.of(host_for(sshd, vm), sshd.client_key)
        return SshConnection.connect(target, store, retry_for=5, notice=lambda _: None)

    def run(hosts: list[HostSteps]) -> list[tuple[str, str, str]]:
        results = run_steps(hosts, connect, scripts_dir=scripts, markers=str(markers))
        return sorted((r.vm, r.step, r.outcome) for r in results)

    return run


def test_second_run_changes_nothing_and_waves_order_hosts(
    sshd: Sshd, store: HostKeyStore, scripts: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    run = runner(sshd, store, scripts, tmp_path / "markers")
    hosts = [
        # vm1's data step is slow; vm3's processor step must still come after it.
        HostSteps("vm1", "kafka-zk",
                 (step("a", "prepare", work), step("b", "data", work, PAUSE="1"))),
        HostSteps("vm3", "processor", (step("c", "prepare", work), step("d", "processor", work))),
    ]  # fmt: skip
    assert run(hosts) == [
        ("vm1", "a", "changed"), ("vm1", "b", "changed"),
        ("vm3", "c", "changed"), ("vm3", "d", "changed"),
    ]  # fmt: skip
    journal = (work / "journal").read_text().split()
    assert journal.index("b") < journal.index("d")
    assert set(journal[:2]) == {"a", "c"}
    assert run(hosts) == [
        ("vm1", "a", "unchanged"), ("vm1", "b", "unchanged"),
        ("vm3", "c", "unchanged"), ("vm3", "d", "unchanged"),
    ]  # fmt: skip
    assert len(journal) == len((work / "journal").read_text().split()) == 4
    # Issue 11: the upload directory is private and keeps no secret after a step.
    stage = Path(os.path.expanduser(f"~{sshd.user}")) / ".gpucost"
    assert stat.S_IMODE(stage.stat().st_mode) == 0o700
    assert list(stage.glob("payload-*")) == []


def test_changed_input_reruns_the_step(
    sshd: Sshd, store: HostKeyStore, scripts: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    run = runner(sshd, store, scripts, tmp_path / "markers")
    assert run([HostSteps("vm1", "kafka-zk", (step("a", "prepare", work, X="1"),))]) == [
        ("vm1", "a", "changed")
    ]
    assert run([HostSteps("vm1", "kafka-zk", (step("a", "prepare", work, X="2"),))]) == [
        ("vm1", "a", "changed")
    ]


def test_failure_names_host_and_step_and_the_next_run_resumes(
    sshd: Sshd, store: HostKeyStore, scripts: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    flag = tmp_path / "fail"
    flag.touch()
    run = runner(sshd, store, scripts, tmp_path / "markers")
    hosts = [
        HostSteps("vm1", "kafka-zk",
                 (step("a", "prepare", work), step("b", "data", work, FAIL_IF=str(flag)))),
        HostSteps("vm3", "processor", (step("c", "prepare", work), step("d", "processor", work))),
    ]  # fmt: skip
    with pytest.raises(StepFailed) as info:
        run(hosts)
    message = info.value.message
    assert message.startswith("vm1: step b failed (exit 7)")
    assert "line one" in message
    assert f"refusing: {flag}" in message
    # vm3 stopped at the wave boundary: d never ran.
    assert not (work / "d.done").exists()
    flag.unlink()
    assert run(hosts) == [
        ("vm1", "a", "unchanged"), ("vm1", "b", "changed"),
        ("vm3", "c", "unchanged"), ("vm3", "d", "changed"),
    ]  # fmt: skip
