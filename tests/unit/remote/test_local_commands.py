"""The local provider's command lines, image recipes and defaults, as data:
what would run, without Docker."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpucost.config.settings import load_config
from gpucost.errors import ConfigError
from gpucost.inventory import VM_NAMES
from gpucost.remote import local_defaults
from gpucost.remote.cloud_config import nocloud_meta_data, user_data
from gpucost.remote.console import fingerprint
from gpucost.remote.providers import Action
from gpucost.remote.providers import local_commands as cmd
from gpucost.remote.providers.local import LocalProvider
from gpucost.remote.providers.local_engine import Docker, LocalError
from gpucost.remote.providers.local_images import (
    CLOUD_INIT_CONF_PATH,
    HOST_RECIPE,
    PYTHON_RECIPE,
    customise_host,
    customise_python,
    debootstrap_command,
    import_command,
)
from support.cloud_console import cloud_init_console, new_host_key

pytestmark = pytest.mark.unit

NAMES = cmd.LocalNames("demo", "172.29.0.0/24")


def test_names_and_fixed_addresses() -> None:
    assert NAMES.network == "gpucost-demo"
    assert NAMES.container("vm1") == "gpucost-demo-vm1"
    assert [NAMES.ip(vm) for vm in VM_NAMES] == [f"172.29.0.{n}" for n in (11, 12, 13, 14)]
    assert NAMES.gateway == "172.29.0.1"
    assert cmd.LocalNames("x", "10.9.8.0/28").ip("vm4") == "10.9.8.14"


def test_network_is_labelled_with_a_fixed_subnet() -> None:
    assert cmd.network_create(NAMES) == [
        "docker",
        "network",
        "create",
        "--driver",
        "bridge",
        "--subnet",
        "172.29.0.0/24",
        "--gateway",
        "172.29.0.1",
        "--label",
        "gpucost.deployment=demo",
        "gpucost-demo",
    ]


def test_host_boots_systemd_without_privileged() -> None:
    argv = cmd.create_host(NAMES, "vm3", "processor")
    assert argv[:2] == ["docker", "create"]  # started once its seed is in
    assert "--privileged" not in argv
    assert argv[-2:] == [cmd.HOST_IMAGE, "/sbin/init"]
    joined = " ".join(argv)
    for flag in (
        "--cap-add=ALL --cap-drop=SYS_RESOURCE",
        "--security-opt seccomp=unconfined",
        "--security-opt apparmor=unconfined",
        "--device-cgroup-rule=a *:* rmw",
        "-v /sys/fs/cgroup:/sys/fs/cgroup:rw",
        "--tmpfs /run --tmpfs /run/lock",
        "--hostname vm3",
        "--network gpucost-demo --ip 172.29.0.13",
        "--label gpucost.deployment=demo",
        "--label gpucost.role=processor",
        "--label gpucost.vm=vm3",
        "-v gpucost-demo-vm3-docker:/var/lib/docker",
    ):
        assert flag in joined, flag


def test_listing_and_removal_go_by_label() -> None:
    assert "label=gpucost.deployment=demo" in cmd.list_containers("demo")
    assert "label=gpucost.deployment=demo" in cmd.list_volumes("demo")
    assert "label=gpucost.deployment=demo" in cmd.list_networks("demo")
    assert cmd.list_container_names("demo")[-2:] == ["--format", "{{.Names}}"]
    assert cmd.rm_container("c") == ["docker", "rm", "--force", "--volumes", "c"]


def test_the_seed_is_what_ec2_hands_cloud_init() -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO0 it's: a [key]"
    meta = yaml.safe_load(nocloud_meta_data("0123456789ab", "vm2", key))
    assert meta == {"instance-id": "0123456789ab", "local-hostname": "vm2", "public-keys": [key]}
    assert cmd.copy_seed("c", "/tmp/s/nocloud") == [
        "docker",
        "cp",
        "/tmp/s/nocloud",
        "c:/var/lib/cloud/seed/nocloud",
    ]
    assert user_data().startswith("#cloud-config\n")


def test_host_recipe_has_what_a_cloud_vm_has() -> None:
    needed = {
        "cloud-init",
        "systemd",
        "openssh-server",
        "sudo",
        "python3",
        "iproute2",
        "ufw",
        "curl",
        "gnupg",
    }
    assert needed <= set(HOST_RECIPE.packages)
    assert {"python3-venv", "python3-pip"} <= set(PYTHON_RECIPE.packages)
    argv = debootstrap_command(HOST_RECIPE, Path("/r"), Path("/c"))
    assert argv[:2] == ["debootstrap", "--variant=minbase"]
    assert argv[-3:] == ["bookworm", "/r", "http://deb.debian.org/debian"]
    imported = import_command(PYTHON_RECIPE)
    assert imported[-2:] == ["-", "gpucost-python:bookworm"]
    assert f"LABEL gpucost.image={PYTHON_RECIPE.label}" in imported


def _fake_rootfs(root: Path) -> None:
    for sub in ("etc/ssh", "etc/systemd/system", "var/lib/dbus", "var/cache/apt/archives"):
        (root / sub).mkdir(parents=True)
    for name in ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "sshd_config"):
        (root / "etc/ssh" / name).write_text("x")
    (root / "etc/machine-id").write_text("0123456789abcdef\n")
    (root / "etc/apt").mkdir(exist_ok=True)
    (root / "var/cache/apt/archives/a.deb").write_text("x")


def test_host_image_carries_nothing_per_host(tmp_path: Path) -> None:
    _fake_rootfs(tmp_path)
    customise_host(tmp_path)
    assert sorted(p.name for p in (tmp_path / "etc/ssh").iterdir()) == [
        "sshd_config",
        "sshd_config.d",
    ]
    assert (
        "PasswordAuthentication no"
        in (tmp_path / "etc/ssh/sshd_config.d/60-cloudimg-settings.conf").read_text()
    )
    assert (tmp_path / "etc/machine-id").read_text() == ""
    assert (tmp_path / cmd.SEED_DIR).parent.is_dir()
    assert not (tmp_path / cmd.SEED_DIR).exists()  # each host gets its own
    assert "bookworm-security" in (tmp_path / "etc/apt/sources.list").read_text()
    assert not list((tmp_path / "var/cache/apt/archives").glob("*.deb"))
    customise_host(tmp_path)  # rebuilding over the same tree is fine


def test_python_image_lets_pip_install(tmp_path: Path) -> None:
    _fake_rootfs(tmp_path)
    marker = tmp_path / "usr/lib/python3.11/EXTERNALLY-MANAGED"
    marker.parent.mkdir(parents=True)
    marker.write_text("x")
    customise_python(tmp_path)
    assert not marker.exists()


def test_local_defaults_fill_only_what_is_unset() -> None:
    config = load_config(use_file=False, provider="local")
    assert config.mongodb.server == "secantusdb"
    assert config.kafka.source == "maven"
    assert config.images.base == local_defaults.PYTHON_IMAGE
    assert config.images.python == "3.11"
    assert config.images.base_archive == local_defaults.python_archive()
    aws = load_config(use_file=False, provider="aws")
    assert aws.mongodb.server == "mongodb"
    assert aws.kafka.source == "maven"  # the pinned upload on every provider: no mirror
    assert aws.images.base_archive is None
    mine = {"mongodb": {"server": "mongodb"}, "images": {"base": "b"}, "kafka": {"dist": "k"}}
    assert local_defaults.apply(mine) == mine


def test_local_defaults_from_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("gpucost.toml").write_text('[mongodb]\nversion = "7.0"\n[images]\nname = "x:1"\n')
    config = load_config()
    assert config.mongodb.server == "secantusdb"
    assert (config.images.base, config.images.name) == (local_defaults.PYTHON_IMAGE, "x:1")


def test_subnet_is_checked() -> None:
    with pytest.raises(ConfigError, match="private IPv4"):
        load_config(use_file=False, local_subnet="8.8.8.0/24")


def test_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    listed = subprocess.run(
        ["ssh-keygen", "-lf", f"{key}.pub"], capture_output=True, text=True, check=True
    )
    assert fingerprint(key.with_suffix(".pub").read_text().split()[1]) == listed.stdout.split()[1]


def _no_engine(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(argv, 1, "", "Cannot connect to the Docker daemon")


def test_plan_without_an_engine_changes_nothing_and_creates_all(tmp_path: Path) -> None:
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO0Xkq test\n")
    calls: list[list[str]] = []

    def runner(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return _no_engine(argv, **kw)

    config = load_config(use_file=False, provider="local", ssh_public_key=key)
    plan = LocalProvider(Docker(runner), cache_dir=tmp_path).plan(config)
    assert {c.action for c in plan.changes} == {Action.CREATE}
    assert [c.name for c in plan.changes if c.kind == "host"] == [
        f"gpucost-main-{vm}" for vm in VM_NAMES
    ]
    assert all(argv[:2] == ["docker", "info"] for argv in calls)


def test_docker_failures_are_one_line() -> None:
    with pytest.raises(LocalError, match="failed: Cannot connect"):
        Docker(_no_engine).run(["docker", "ps"])


def test_trust_script_installs_each_ca_once() -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB'x\n-----END CERTIFICATE-----\n"
    script = cmd.trust_script({"egress.crt": pem})
    subprocess.run(["sh", "-n", "-c", script], check=True)
    assert "/usr/local/share/ca-certificates/gpucost-egress.crt" in script
    assert "update-ca-certificates" in script
    assert "cert = /etc/ssl/certs/ca-certificates.crt" in script


def test_hosts_boot_as_ubuntu_on_ec2_does(tmp_path: Path) -> None:
    # Issue 11: cloud-init reads the NoCloud seed only, leaves Docker's network
    # alone, and makes Canonical's `ubuntu` login with passwordless sudo.
    _fake_rootfs(tmp_path)
    customise_host(tmp_path)
    conf = yaml.safe_load((tmp_path / CLOUD_INIT_CONF_PATH).read_text())
    assert conf["datasource_list"] == ["NoCloud", "None"]
    assert conf["network"] == {"config": "disabled"}
    user = conf["system_info"]["default_user"]
    assert (user["name"], user["sudo"], user["lock_passwd"]) == (
        cmd.ADMIN_USER,
        ["ALL=(ALL) NOPASSWD:ALL"],
        True,
    )
    assert "dsa" not in conf["ssh_genkeytypes"]


def test_the_provider_reads_host_keys_from_the_console_only(tmp_path: Path) -> None:
    printed_key = new_host_key()

    def runner(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        out = cloud_init_console([printed_key]) if argv[:2] == ["docker", "logs"] else ""
        return subprocess.CompletedProcess(argv, 0, out, "")

    published = LocalProvider(Docker(runner), cache_dir=tmp_path)._published_keys("h")
    assert published is not None
    assert published.as_lines() == (printed_key,)

    def not_yet(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        out = "systemd booting\n" if argv[:2] == ["docker", "logs"] else new_host_key()
        return subprocess.CompletedProcess(argv, 0, out, "")

    # Not printed yet: no keys, whatever the files say (no trust on first use).
    assert LocalProvider(Docker(not_yet), cache_dir=tmp_path)._published_keys("h") is None
