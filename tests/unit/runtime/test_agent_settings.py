import os
import subprocess
import sys

import pytest

from gpucost.errors import ConfigError
from gpucost.runtime.agent import agent_producer_config, window
from gpucost.runtime.agent_main import Throttle
from gpucost.runtime.agent_settings import load_agent_settings
from gpucost.runtime.kafka import KEY_PARTITIONER
from gpucost.runtime.producer import producer_config

pytestmark = pytest.mark.unit

NAMES = (
    "KAFKA_BOOTSTRAP",
    "NODE",
    "GPU_SOURCE",
    "SEED_TRACE",
    "SAMPLE_INTERVAL_S",
    "SAMPLES_TOPIC",
    "AGENT_ID",
    "BUFFER_MAX_SAMPLES",
    "KAFKA_CREATE_TOPICS",
)


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in NAMES}
    return subprocess.run(
        [sys.executable, "-m", "gpucost.runtime.agent_main", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


GOOD = {"KAFKA_BOOTSTRAP": "127.0.0.1:9"}


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({}, "KAFKA_BOOTSTRAP"),
        ({"KAFKA_BOOTSTRAP": "nonsense"}, "KAFKA_BOOTSTRAP"),
        ({**GOOD, "GPU_SOURCE": "tpu"}, "GPU_SOURCE"),
        ({**GOOD, "SEED_TRACE": "/no/such/trace.json"}, "SEED_TRACE"),
        ({**GOOD, "SAMPLE_INTERVAL_S": "0"}, "SAMPLE_INTERVAL_S"),
        ({**GOOD, "SAMPLE_INTERVAL_S": "often"}, "SAMPLE_INTERVAL_S"),
        ({**GOOD, "BUFFER_MAX_SAMPLES": "5"}, "BUFFER_MAX_SAMPLES"),
        ({**GOOD, "KAFKA_CREATE_TOPICS": "maybe"}, "KAFKA_CREATE_TOPICS"),
        ({**GOOD, "SAMPLES_TOPIC": ""}, "SAMPLES_TOPIC"),
        ({**GOOD, "NODE": "x" * 300}, "NODE"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it_and_exit_2(env: dict[str, str], name: str) -> None:
    result = run(env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gpucost-agent: invalid settings: ")
    assert name in lines[0]
    assert result.stdout == ""


def test_help_needs_no_environment_and_names_every_variable() -> None:
    result = run({}, "--help")
    assert result.returncode == 0
    for name in NAMES:
        assert name in result.stdout


def test_an_argument_is_refused_in_one_line() -> None:
    result = run(GOOD, "--bootstrap")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_named_source_that_cannot_open_is_one_line_not_a_traceback() -> None:
    result = run({**GOOD, "GPU_SOURCE": "nvml"})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "nvml" in result.stderr.lower()


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    settings = load_agent_settings(kafka_bootstrap="k:9092")
    assert settings.samples_topic == "gpu_samples"
    assert settings.sample_interval_s == 1.0
    assert settings.buffer_max_samples == 100_000
    assert settings.gpu_source == "auto"
    assert settings.kafka_create_topics is False
    assert settings.publisher_id == f"gpucost-agent@{settings.node}"
    monkeypatch.setenv("AGENT_ID", "rack7-agent")
    monkeypatch.setenv("NODE", "gpu-host-1")
    settings = load_agent_settings(kafka_bootstrap="k:9092")
    assert (settings.node, settings.publisher_id) == ("gpu-host-1", "rack7-agent")


def test_settings_errors_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="BUFFER_MAX_SAMPLES"):
        load_agent_settings(kafka_bootstrap="k:9092", buffer_max_samples=0)


@pytest.mark.parametrize(("bound", "expected"), [(10, 1), (20, 2), (100_000, 1000), (10**7, 1000)])
def test_the_client_holds_a_tenth_of_the_bound_at_most_1000(bound: int, expected: int) -> None:
    assert window(bound) == expected


def test_samples_and_token_events_are_partitioned_alike_and_never_timed_out() -> None:
    agent = agent_producer_config("k:9092")
    events = producer_config("k:9092")
    assert agent["partitioner"] == events["partitioner"] == KEY_PARTITIONER
    assert agent["enable.idempotence"] is True
    assert agent["acks"] == "all"
    assert agent["message.timeout.ms"] == 0


def test_a_repeated_client_complaint_is_logged_once_a_minute() -> None:
    now = [0.0]
    throttle = Throttle(every_s=60.0, clock=lambda: now[0])
    refused = (
        "127.0.0.1:1/bootstrap: Connect failed: Connection refused (after {}ms in state CONNECT)"
    )
    assert throttle.allow(refused.format(0))
    now[0] = 0.05
    assert not throttle.allow(refused.format(2))  # the same line but for its numbers
    assert throttle.allow("1/1 brokers are down")  # another kind passes
    now[0] = 60.0
    assert throttle.allow(refused.format(7))
