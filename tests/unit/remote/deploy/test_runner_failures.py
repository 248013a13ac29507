"""Issue 11, item 5: what a failed deploy shows. A fake host connection (the
runner's `Connection` interface) stands in for SSH; the real sshd tests are in
tests/integration/remote.

Fails on the code before: failure output was printed unredacted, only the
first failing host was named, and the local provider let GPUCOST_ADMIN_CIDR
replace its own admin address.
"""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gpucost.config.settings import load_config
from gpucost.inventory import VmName
from gpucost.remote.role_steps import common_steps
from gpucost.remote.runner import DeployFailed, StepFailed, run_steps
from gpucost.remote.ssh import Result
from gpucost.remote.steps import SCRIPTS_DIR, HostSteps, Step, Upload
from support.inventories import inventory

pytestmark = pytest.mark.unit

PASSWORD = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


@dataclass
class FakeHost:
    vm: str
    output: str = ""
    redact: tuple[str, ...] = ()
    commands: list[str] = field(default_factory=list)
    together: threading.Barrier | None = None
    """Both hosts fail in the same moment (else the second may stop at the gate)."""

    def run(
        self, command: str, *, sudo: bool = False, timeout: float = 600, quiet: bool = False
    ) -> Result:
        self.commands.append(command)
        if command.startswith("mkdir") or "sha256sum" in command:
            return Result(0, "/home/ubuntu/.gpucost\n", "")
        if "bash " in command and "scripts/" in command:  # the step's script
            if self.together is not None:
                self.together.wait(timeout=30)
            return Result(3, self.output, "")
        return Result(1, "", "")  # checks: not done yet

    def put_file(self, source: Path | bytes, remote: str, mode: int = 0o644) -> None:
        pass

    def get_file(self, remote: str, local: Path) -> None:
        pass

    def close(self) -> None:
        pass


def one_step(secret: bool = True) -> Step:
    upload = Upload("app.env", content=b"PASSWORD=x\n", mode=0o600, secret=secret)
    return Step("harden", ("kafka-zk",), "prepare", "harden.sh", uploads=(upload,))


def run(hosts: dict[VmName, FakeHost]) -> None:
    plans = [HostSteps(vm, "kafka-zk", (one_step(),)) for vm in hosts]
    run_steps(plans, lambda vm: hosts[vm], scripts_dir=SCRIPTS_DIR)


def test_a_failure_is_redacted_before_it_is_shown() -> None:
    host = FakeHost(
        "vm1", output=f"mongodb://gpucost:{PASSWORD}@10.0.0.12 refused\n", redact=(PASSWORD,)
    )
    with pytest.raises(StepFailed) as info:
        run({"vm1": host})
    assert PASSWORD not in info.value.one_line()
    assert "gpucost:****@10.0.0.12 refused" in info.value.message


def test_every_failing_host_is_named() -> None:
    both = threading.Barrier(2)
    hosts: dict[VmName, FakeHost] = {
        "vm1": FakeHost("vm1", output="kafka: disk full\n", together=both),
        "vm2": FakeHost("vm2", output="mongodb: no such release\n", together=both),
    }
    with pytest.raises(DeployFailed) as info:
        run(hosts)
    assert "2 hosts failed" in info.value.message
    assert "vm1: step harden failed" in info.value.message
    assert "vm2: step harden failed" in info.value.message
    assert "no such release" in info.value.message


def test_secret_uploads_are_removed_even_after_a_failure() -> None:
    host = FakeHost("vm1")
    with pytest.raises(StepFailed):
        run({"vm1": host})
    assert "rm -f -- /home/ubuntu/.gpucost/app.env" in host.commands
    assert host.commands[0].startswith("mkdir -p ~/.gpucost/scripts && chmod 700 ~/.gpucost ")


def test_the_local_providers_admin_address_wins_over_the_setting() -> None:
    # GPUCOST_ADMIN_CIDR names the admin's public IP; the local hosts see this
    # machine as the gateway, and ufw must admit that or lock it out.
    config = load_config(use_file=False, provider="local", admin_cidr="203.0.113.7/32")
    local = inventory().model_copy(update={"admin_cidr": "172.29.0.1/32"})
    harden = next(s for s in common_steps(local, config, local.hosts[0]) if s.name == "harden")
    assert dict(harden.env)["ADMIN_CIDR"] == "172.29.0.1/32"
    aws = inventory()
    harden = next(s for s in common_steps(aws, config, aws.hosts[0]) if s.name == "harden")
    assert dict(harden.env)["ADMIN_CIDR"] == "203.0.113.7/32"


def _pushed_tree(workdir: Path, step: Step) -> None:
    """What the runner's pushes leave in the upload directory."""
    (workdir / "scripts").mkdir(parents=True)
    for name in (step.script, "lib.sh", "mongo-users.py"):
        (workdir / "scripts" / name).write_bytes((SCRIPTS_DIR / name).read_bytes())
    for upload in step.uploads:
        target = workdir / upload.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(upload.content or (upload.local or Path()).read_bytes())


def test_pushed_files_are_checked_on_the_host_before_the_script(tmp_path: Path) -> None:
    # Issue 11: what reaches the host is checksum-verified against what was sent.
    wheel = tmp_path / "gpucost-1.0-py3-none-any.whl"
    wheel.write_bytes(b"a wheel" * 1000)
    step = Step(
        "image",
        ("processor",),
        "prepare",
        "image.sh",
        uploads=(
            Upload("wheels/gpucost-1.0-py3-none-any.whl", local=wheel),
            Upload("app.env", content=b"PASSWORD=x\n", mode=0o600, secret=True),
        ),
    )
    assert [name for name, _ in step.pushed()] == [
        "scripts/image.sh",
        "scripts/lib.sh",
        "scripts/mongo-users.py",
        "wheels/gpucost-1.0-py3-none-any.whl",
    ], "secrets stay out of the command line, digest included"
    workdir = tmp_path / "home" / ".gpucost"
    _pushed_tree(workdir, step)

    def check() -> subprocess.CompletedProcess[str]:
        command = step.verify_command(str(workdir))
        return subprocess.run(["bash", "-c", command], capture_output=True, text=True)

    assert (check().returncode, check().stdout) == (0, "")
    stale = workdir / "wheels/gpucost-1.0-py3-none-any.whl"
    stale.write_bytes(stale.read_bytes()[:-1])  # a truncated push
    refused = check()
    assert refused.returncode != 0
    assert "wheels/gpucost-1.0-py3-none-any.whl: FAILED" in refused.stdout
    stale.unlink()
    assert check().returncode != 0


def test_a_file_that_differs_stops_the_step_before_its_script() -> None:
    class Tampered(FakeHost):
        def run(
            self, command: str, *, sudo: bool = False, timeout: float = 600, quiet: bool = False
        ) -> Result:
            if "sha256sum" in command:
                self.commands.append(command)
                return Result(1, "scripts/harden.sh: FAILED\n", "")
            return super().run(command, sudo=sudo, timeout=timeout, quiet=quiet)

    host = Tampered("vm1")
    with pytest.raises(StepFailed, match=r"not what this machine sent: scripts/harden.sh: FAILED"):
        run({"vm1": host})
    assert not [c for c in host.commands if "bash " in c and "scripts/harden.sh" in c]
