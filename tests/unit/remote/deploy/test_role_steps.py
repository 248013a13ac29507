"""Each role's steps as data: commands, files and checks, asserted without SSH."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpucost.config.settings import GpucostConfig, load_config
from gpucost.errors import ConfigError
from gpucost.remote.gpu_hosts import with_gpu_hosts
from gpucost.remote.role_steps import (
    Artifacts,
    InventoryNotReady,
    Secrets,
    agent_nodes,
    allowed_sources,
    build_steps,
)
from gpucost.remote.steps import WAVES, HostSteps
from support.inventories import inventory

SECRETS = Secrets("admin-pw-0123456789", "app-pw-9876543210")


def config(**overrides: object) -> GpucostConfig:
    # provider="aws": the local provider defaults [mongodb] server to secantusdb.
    return load_config(use_file=False, provider="aws", admin_cidr="203.0.113.7/32", **overrides)


@pytest.fixture
def artifacts(tmp_path: Path) -> Artifacts:
    wheel = tmp_path / "gpucost-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"wheel")
    return Artifacts(wheels=(wheel,))


def steps_of(cfg: GpucostConfig, artifacts: Artifacts) -> dict[str, HostSteps]:
    return {p.vm: p for p in build_steps(cfg, inventory(), SECRETS, artifacts)}


def test_steps_per_host_in_order(artifacts: Artifacts) -> None:
    got = {vm: [s.name for s in p.steps] for vm, p in steps_of(config(), artifacts).items()}
    assert got == {
        "vm1": ["boot", "harden", "java", "kafka", "topics"],
        "vm2": ["boot", "harden", "mongodb"],
        "vm3": ["boot", "harden", "docker", "image", "processor"],
        "vm4": ["boot", "harden", "docker", "image", "agent", "producers"],
    }
    for host in steps_of(config(), artifacts).values():
        waves = [WAVES.index(s.wave) for s in host.steps]
        assert waves == sorted(waves), "a host's steps must not go back a wave"
        assert host.steps[0].name == "boot"


def test_security_matrix_uses_peers_private_ips() -> None:
    assert allowed_sources(inventory()) == {
        "vm1": ((22, "admin"), (9092, "10.0.0.13"), (9092, "10.0.0.14")),
        "vm2": ((22, "admin"), (27017, "10.0.0.13")),
        "vm3": ((22, "admin"), (8080, "admin")),
        "vm4": ((22, "admin"),),
    }


def test_harden_step_carries_the_rules_and_admin(artifacts: Artifacts) -> None:
    harden = steps_of(config(), artifacts)["vm1"].step("harden")
    assert dict(harden.env) == {
        "ADMIN_CIDR": "203.0.113.7/32",
        "ALLOW": "22:admin 9092:10.0.0.13 9092:10.0.0.14",
    }
    assert "passwordauthentication no" in harden.check


def test_kafka_advertised_on_private_ip_and_partitions(artifacts: Artifacts) -> None:
    vm1 = steps_of(config(kafka={"partitions": 6}), artifacts)["vm1"]
    kafka = dict(vm1.step("kafka").env)
    assert kafka["LISTEN_IP"] == "10.0.0.11"
    assert kafka["KAFKA_SOURCE"] == "archive"
    assert kafka["KAFKA_MANIFEST_SHA256"] == ""
    assert vm1.step("kafka").uploads == ()
    topics = dict(vm1.step("topics").env)
    assert topics == {
        "BOOTSTRAP": "10.0.0.11:9092",
        "TOPICS": "token_usage token_usage.dlq gpu_samples",
        "PARTITIONS": "6",
    }


def test_kafka_dist_is_uploaded(artifacts: Artifacts, tmp_path: Path) -> None:
    dist = tmp_path / "kafka.tgz"
    dist.write_bytes(b"tgz")
    with_dist = Artifacts(wheels=artifacts.wheels, kafka_dist=dist)
    kafka = steps_of(config(), with_dist)["vm1"].step("kafka")
    assert dict(kafka.env)["KAFKA_SOURCE"] == "upload"
    assert dict(kafka.env)["KAFKA_MANIFEST_SHA256"] == ""  # yours: nothing pinned to check
    assert [(u.name, u.local) for u in kafka.uploads] == [("kafka.tgz", dist)]


def test_pinned_upload_carries_the_pin(artifacts: Artifacts, tmp_path: Path) -> None:
    dist = tmp_path / "kafka.tgz"
    dist.write_bytes(b"tgz")
    pinned = Artifacts(wheels=artifacts.wheels, kafka_dist=dist, kafka_pin="ab" * 32)
    kafka = steps_of(config(), pinned)["vm1"].step("kafka")
    assert dict(kafka.env)["KAFKA_SOURCE"] == "upload"
    assert dict(kafka.env)["KAFKA_MANIFEST_SHA256"] == "ab" * 32
    assert "pinned upload" in kafka.summary


def test_processor_env_file_is_secret_and_complete(artifacts: Artifacts) -> None:
    step = steps_of(config(price_per_gpu_hour_usd=2.5), artifacts)["vm3"].step("processor")
    (env_file,) = step.uploads
    assert (env_file.name, env_file.mode, env_file.secret) == ("processor.env", 0o600, True)
    assert env_file.content is not None
    lines = env_file.content.decode().splitlines()
    assert "PRICE_PER_HOUR_USD=2.5" in lines
    assert "KAFKA_BOOTSTRAP=10.0.0.11:9092" in lines
    assert "KAFKA_GROUP_INSTANCE_ID=gpucost-processor" in lines
    assert (
        "MONGODB_URI=mongodb://gpucost:app-pw-9876543210@10.0.0.12:27017/gpucost"
        "?authSource=gpucost" in lines
    )


def test_passwords_only_travel_in_secret_uploads(artifacts: Artifacts) -> None:
    for host in steps_of(config(), artifacts).values():
        for step in host.steps:
            visible = " ".join(
                [step.check, *step.args, *(f"{k}={v}" for k, v in step.env),
                 step.run_command("/home/u/.gpucost", "digest", {})]
            )  # fmt: skip
            for password in SECRETS.values():
                assert password not in visible, (host.vm, step.name)
            for upload in step.uploads:
                if upload.content and any(p.encode() in upload.content for p in SECRETS.values()):
                    assert upload.secret
                    assert upload.mode == 0o600


def test_mongodb_or_secantusdb_never_both(artifacts: Artifacts) -> None:
    assert [s.name for s in steps_of(config(), artifacts)["vm2"].steps][-1] == "mongodb"
    vm2 = steps_of(config(mongodb={"server": "secantusdb"}), artifacts)["vm2"]
    assert [s.name for s in vm2.steps] == ["boot", "harden", "secantusdb"]
    assert dict(vm2.step("secantusdb").env)["BIND_IP"] == "10.0.0.12"
    assert "SecantusDB" in vm2.step("secantusdb").summary


def test_images_from_wheels_and_base_archive(artifacts: Artifacts, tmp_path: Path) -> None:
    archive = tmp_path / "base.tar.gz"
    archive.write_bytes(b"x")
    cfg = config(images={"base": "gpucost-python:bookworm", "base_archive": archive})
    image = steps_of(cfg, artifacts)["vm4"].step("image")
    assert dict(image.env) == {
        "IMAGE": "gpucost:latest",
        "BASE_IMAGE": "gpucost-python:bookworm",
        "BASE_ARCHIVE": "base-image.tar.gz",
    }
    assert [u.name for u in image.uploads] == [
        "wheels/gpucost-0.1.0-py3-none-any.whl",
        "base-image.tar.gz",
    ]


def test_producers_replicas(artifacts: Artifacts) -> None:
    step = steps_of(config(producers={"replicas": 2, "rate": 20}), artifacts)["vm4"].step(
        "producers"
    )
    assert dict(step.env)["REPLICAS"] == "2"
    (env_file,) = step.uploads
    assert (
        env_file.content
        == b"KAFKA_BOOTSTRAP=10.0.0.11:9092\nPRODUCER_RATE=20.0\nPRODUCER_NODE=vm4\n"
    )


def test_digest_follows_inputs(artifacts: Artifacts) -> None:
    three = steps_of(config(), artifacts)["vm1"].step("topics")
    six = steps_of(config(kafka={"partitions": 6}), artifacts)["vm1"].step("topics")
    assert three.digest() == steps_of(config(), artifacts)["vm1"].step("topics").digest()
    assert three.digest() != six.digest()


def test_run_command_sets_env_and_records_the_marker(artifacts: Artifacts) -> None:
    step = steps_of(config(), artifacts)["vm1"].step("topics")
    line = step.run_command("/home/u/.gpucost", "abc123", {"GPUCOST_SSH_CLIENT": "192.0.2.1"})
    assert line == (
        "cd /home/u/.gpucost && env GPUCOST_WORKDIR=/home/u/.gpucost BOOTSTRAP=10.0.0.11:9092 "
        "TOPICS='token_usage token_usage.dlq gpu_samples' PARTITIONS=3 "
        "GPUCOST_SSH_CLIENT=192.0.2.1 "
        "bash /home/u/.gpucost/scripts/kafka-topics.sh && install -d -m 0755 "
        "/var/lib/gpucost/done && echo abc123 > /var/lib/gpucost/done/topics"
    )
    assert step.done_command("abc123") == (
        '[ "$(cat /var/lib/gpucost/done/topics 2>/dev/null)" = abc123 ] '
        "&& { systemctl is-active --quiet kafka ; }"
    )


def test_every_script_exists(artifacts: Artifacts) -> None:
    for host in steps_of(config(mongodb={"server": "secantusdb"}), artifacts).values():
        for step in host.steps:
            assert step.script_path.is_file(), step.script


def test_refuses_hosts_that_are_not_running(artifacts: Artifacts) -> None:
    with pytest.raises(InventoryNotReady, match="not every VM is running"):
        build_steps(config(), inventory("stopped"), SECRETS, artifacts)


def test_the_producers_vm_runs_an_agent_and_the_processor_reads_its_samples(
    artifacts: Artifacts,
) -> None:
    steps = steps_of(config(), artifacts)
    agent = steps["vm4"].step("agent")
    (env_file,) = agent.uploads
    env = dict(line.split("=", 1) for line in env_file.content.decode().splitlines())
    assert env["NODE"] == "vm4"
    assert env["GPU_SOURCE"] == "seed"
    assert env["SAMPLES_TOPIC"] == "gpu_samples"
    processor = dict(
        line.split("=", 1)
        for line in steps["vm3"].step("processor").uploads[0].content.decode().splitlines()
    )
    assert processor["GPU_SOURCE"] == "agent"
    assert processor["SAMPLES_TOPIC"] == "gpu_samples"
    # The synthetic requests are served by the agent's GPU: the same node.
    producers = steps["vm4"].step("producers").uploads[0].content
    assert b"PRODUCER_NODE=vm4\n" in producers


def test_without_the_agent_the_processor_samples_itself_under_its_own_name(
    artifacts: Artifacts,
) -> None:
    steps = steps_of(config(agent={"on_producers": False}), artifacts)
    assert "agent" not in [s.name for s in steps["vm4"].steps]
    processor = steps["vm3"].step("processor").uploads[0].content
    assert b"GPU_SOURCE=auto\n" in processor
    assert b"NODE=vm3\n" in processor
    assert b"PRODUCER_NODE=vm3\n" in steps["vm4"].step("producers").uploads[0].content


GPU_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHa0d3aG9zdGtleWZvcnRlc3RzMTIzNDU2Nzg5MA"
LISTED = {
    "name": "gpu-7",
    "address": "192.0.2.70",
    "host_key": GPU_KEY,
    "source_cidr": "192.0.2.0/28",
}


def test_a_listed_gpu_host_gets_the_agent_and_nothing_else(artifacts: Artifacts) -> None:
    cfg = config(gpu_hosts=[LISTED])
    inv = with_gpu_hosts(cfg, inventory())
    steps = {p.vm: p for p in build_steps(cfg, inv, SECRETS, artifacts)}
    # Its firewall stays the user's: no boot wait, no harden; Docker, image, agent.
    assert [s.name for s in steps["gpu-7"].steps] == ["docker", "image", "agent"]
    agent = dict(
        line.split("=", 1)
        for line in steps["gpu-7"].step("agent").uploads[0].content.decode().splitlines()
    )
    assert agent["NODE"] == "gpu-7"
    assert agent["GPU_SOURCE"] == "auto"
    # vm1 admits it on 9092, from where it connects.
    harden = dict(steps["vm1"].step("harden").env)
    assert "9092:192.0.2.0/28" in harden["ALLOW"].split()
    assert agent_nodes(inv, cfg) == ("vm4", "gpu-7")


def test_a_gpu_host_s_key_is_published_before_any_connection() -> None:
    (host,) = [
        h for h in with_gpu_hosts(config(gpu_hosts=[LISTED]), inventory()).hosts if h.role == "gpu"
    ]
    assert host.ssh_host_keys == (GPU_KEY,)
    assert host.ssh_host_key_fingerprints[0].startswith("SHA256:")
    assert (host.private_ip, host.ssh_user, host.provider) == ("192.0.2.70", "ubuntu", "existing")


@pytest.mark.parametrize(
    ("hosts", "message"),
    [
        ([{**LISTED, "name": "vm3"}], "its own name"),
        ([LISTED, LISTED], "its own name"),
        ([{**LISTED, "host_key": "AAAA"}], "host_key"),
        ([{k: v for k, v in LISTED.items() if k != "host_key"}], "host_key"),
    ],
)
def test_bad_gpu_hosts_are_refused(hosts: list[dict[str, str]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(gpu_hosts=hosts)
