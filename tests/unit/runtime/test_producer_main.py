import subprocess
import sys

import pytest

from gpucost.runtime.producer_settings import load_producer_settings

pytestmark = pytest.mark.unit

MAIN = "from gpucost.runtime.producer_main import main; main()"


def producer(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # An empty environment: no KAFKA_BOOTSTRAP, no HOME; the entry point must cope.
    return subprocess.run(
        [sys.executable, "-c", MAIN, *args],
        env=env or {},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_works_without_any_environment() -> None:
    result = producer("--help")
    assert result.returncode == 0, result.stderr
    for flag in ("--bootstrap", "--rate", "--count", "--duration", "--replay", "--loop", "--gpus"):
        assert flag in result.stdout
    for flag in ("--node", "--model", "--seed", "--mark"):
        assert flag in result.stdout
    assert "Example:" in result.stdout
    assert result.stdout.startswith("Usage: gpucost-producer")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "--bootstrap (KAFKA_BOOTSTRAP) is required"),
        (("--bootstrap", "nonsense"), "expected host:port"),
        (("--bootstrap", "h:1", "--rate", "-5"), "--rate"),
        (("--bootstrap", "h:1", "--count", "0"), "--count"),
        (("--bootstrap", "h:1", "--loop"), "--loop needs --replay"),
        (("--bootstrap", "h:1", "--replay", "/no/such/trace.json"), "no such file"),
        (("--bootstrap", "h:1", "--model", "gpt-9"), "unknown model"),
        (("--bootstrap", "h:1", "--gpus", "0"), "--gpus"),
        (("--bootstrap", "h:1", "--rate", "fast"), "'--rate'"),
    ],
)
def test_bad_settings_are_one_line_and_exit_2(args: tuple[str, ...], says: str) -> None:
    result = producer(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert says in result.stderr
    assert result.stdout == ""
    if "fast" not in args:  # click's own usage errors take a few lines; ours take one
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_environment_fills_in_and_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("KAFKA_TOPIC", "t")
    monkeypatch.setenv("PRODUCER_RATE", "7")
    monkeypatch.setenv("PRODUCER_MARK", "m")
    monkeypatch.setenv("NODE", "vm4")
    settings = load_producer_settings(rate=9.0, count=None)
    assert (settings.bootstrap, settings.topic, settings.rate) == ("k1:9092,k2:9092", "t", 9.0)
    assert (settings.node, settings.producer_id, settings.count) == ("vm4", "m", None)


def test_without_a_mark_the_producer_id_names_node_and_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PRODUCER_MARK", raising=False)
    settings = load_producer_settings(bootstrap="h:1", node="vm4")
    assert settings.producer_id.startswith("gpucost-producer@vm4:")
