"""The local provider for real: four systemd hosts with sshd on their own IPs,
converged twice (the second changes nothing), then destroyed without a trace.

Needs root and Debian's mirror (Docker and debootstrap are installed and dockerd
started if missing). About 30 s with the images cached; the first image build
adds ~2-3 min. Only the containers this test creates are contacted.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from gpucost.config.settings import GpucostConfig, load_config
from gpucost.inventory import VM_NAMES, Inventory
from gpucost.remote.cloud_config import ADMIN_ACCESS_UNIT, user_data
from gpucost.remote.console import fingerprint
from gpucost.remote.providers import ProgressEvent
from gpucost.remote.providers.local import LocalProvider

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="the local provider needs root"),
]

SUBNET = "172.29.200.0/24"
DEPLOYMENT = "e2e-local"
LABEL = f"label=gpucost.deployment={DEPLOYMENT}"


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    private = tmp_path_factory.mktemp("key") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(private)], check=True)
    return private


@pytest.fixture(scope="module")
def config(key: Path, tmp_path_factory: pytest.TempPathFactory) -> GpucostConfig:
    return load_config(
        use_file=False,
        provider="local",
        deployment=DEPLOYMENT,
        local_subnet=SUBNET,
        ssh_public_key=key.with_suffix(".pub"),
        state_root=tmp_path_factory.mktemp("state"),
    )


@pytest.fixture(scope="module")
def provider() -> LocalProvider:
    return LocalProvider()


@pytest.fixture(scope="module")
def converged(provider: LocalProvider, config: GpucostConfig) -> Iterator[Inventory]:
    try:
        yield provider.converge(config)
    finally:
        provider.destroy(config)


def _docker(*args: str) -> list[str]:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout
    return out.split()


def _connect(ip: str, key: Path, fingerprints: tuple[str, ...]) -> paramiko.SSHClient:
    class Pinned(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client: paramiko.SSHClient, name: str, k: paramiko.PKey) -> None:
            assert fingerprint(k.get_base64()) in fingerprints, f"{name} offered an unknown key"

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(Pinned())
    client.connect(
        ip,
        22,
        username="ubuntu",
        key_filename=str(key),
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    return client


def _run(client: paramiko.SSHClient, command: str) -> str:
    _, stdout, _ = client.exec_command(command, timeout=30)
    out = stdout.read().decode().strip()
    assert stdout.channel.recv_exit_status() == 0, command
    return out


def test_four_hosts_on_their_own_ips(converged: Inventory) -> None:
    subnet = ipaddress.ip_network(SUBNET)
    assert converged.running
    assert [h.name for h in converged.hosts] == list(VM_NAMES)
    assert [h.private_ip for h in converged.hosts] == [str(subnet[n]) for n in (11, 12, 13, 14)]
    assert all(h.public_ip == h.private_ip and h.ssh_user == "ubuntu" for h in converged.hosts)
    assert converged.admin_cidr == f"{subnet[1]}/32"
    assert converged.base_image_archive
    assert Path(converged.base_image_archive).is_file()


def test_each_host_is_a_fresh_vm_reached_by_key(converged: Inventory, key: Path) -> None:
    host_keys = set()
    for host in converged.hosts:
        assert host.private_ip
        assert host.ssh_host_key_fingerprints
        host_keys.add(host.ssh_host_key_fingerprints)
        client = _connect(host.private_ip, key, host.ssh_host_key_fingerprints)
        try:
            assert _run(client, "hostname") == host.name
            assert _run(client, "systemctl is-system-running") in ("running", "degraded")
            assert _run(client, "sudo -n id -u") == "0"
            # Booted as an EC2 instance: cloud-init ran the AWS provider's user data.
            assert _run(client, "cloud-init status") == "status: done"
            ran = _run(client, "sudo -n cat /var/lib/cloud/instance/user-data.txt")
            assert ran == user_data().strip()
            assert _run(client, f"systemctl is-enabled {ADMIN_ACCESS_UNIT}") == "enabled"
            assert _run(client, "ip -4 -o addr show eth0").count(host.private_ip) == 1
            for tool in ("python3", "ufw", "curl", "gpg", "update-ca-certificates"):
                _run(client, f"sudo -n sh -c 'command -v {tool}'")
            assert _run(client, "findmnt -n -o TARGET /var/lib/docker") == "/var/lib/docker"
            trusted = _run(client, "ls /usr/local/share/ca-certificates")
            for ca in Path("/usr/local/share/ca-certificates").glob("*.crt"):
                assert f"gpucost-{ca.name}" in trusted, "this machine's CAs are trusted too"
        finally:
            client.close()
    assert len(host_keys) == 4, "host keys are made per host, not baked into the image"


def test_password_login_is_refused(converged: Inventory) -> None:
    ip = converged.hosts[0].private_ip
    assert ip
    transport = paramiko.Transport((ip, 22))
    try:
        transport.start_client(timeout=10)
        with pytest.raises(paramiko.BadAuthenticationType) as refused:
            transport.auth_password("ubuntu", "guess")
        assert refused.value.allowed_types == ["publickey"]
    finally:
        transport.close()


def test_second_converge_changes_nothing(
    converged: Inventory, provider: LocalProvider, config: GpucostConfig
) -> None:
    events: list[ProgressEvent] = []
    again = provider.converge(config, events.append)
    changed = [e for e in events if e.action in ("created", "updated", "deleted")]
    assert changed == []
    assert [h.instance_id for h in again.hosts] == [h.instance_id for h in converged.hosts]
    assert provider.plan(config).in_sync


def test_stopped_host_is_started(
    converged: Inventory, provider: LocalProvider, config: GpucostConfig
) -> None:
    subprocess.run(["docker", "stop", f"gpucost-{DEPLOYMENT}-vm2"], check=True, capture_output=True)
    assert provider.inventory(config).host("vm2").state == "stopped"
    assert not provider.plan(config).in_sync
    assert provider.converge(config).host("vm2").state == "running"


def test_status_json_through_the_cli(converged: Inventory, config: GpucostConfig) -> None:
    from typer.testing import CliRunner

    from gpucost.cli.app import app

    args = ["status", "--provider", "local", "--deployment", DEPLOYMENT, "--json"]
    result = CliRunner().invoke(app, args, env={"GPUCOST_LOCAL_SUBNET": SUBNET})
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["name"], r["state"]) for r in rows] == [(vm, "running") for vm in VM_NAMES]


def test_destroy_leaves_nothing(
    converged: Inventory, provider: LocalProvider, config: GpucostConfig
) -> None:
    removed = provider.destroy(config)
    assert sorted({r.kind for r in removed}) == ["host", "network", "volume"]
    assert _docker("ps", "-a", "-q", "--filter", LABEL) == []
    assert _docker("volume", "ls", "-q", "--filter", LABEL) == []
    assert _docker("network", "ls", "-q", "--filter", LABEL) == []
    assert all(h.state == "absent" for h in provider.inventory(config).hosts)
    assert provider.destroy(config) == []  # what is gone stays gone, quietly
