import os
import subprocess
import sys

import pytest

from gpucost.errors import ConfigError
from gpucost.runtime.settings import load_processor_settings

pytestmark = pytest.mark.unit

GOOD = {
    "PRICE_PER_HOUR_USD": "3.5",
    "KAFKA_BOOTSTRAP": "127.0.0.1:9092",
    "MONGODB_URI": "mongodb://u:hunter2@127.0.0.1:27017/gpucost",
}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in GOOD}
    return subprocess.run(
        [sys.executable, "-m", "gpucost.runtime.processor_main", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({}, ["PRICE_PER_HOUR_USD", "KAFKA_BOOTSTRAP", "MONGODB_URI"]),
        ({**GOOD, "PRICE_PER_HOUR_USD": "-1"}, ["PRICE_PER_HOUR_USD"]),
        ({**GOOD, "PRICE_PER_HOUR_USD": "cheap"}, ["PRICE_PER_HOUR_USD"]),
        ({**GOOD, "WINDOW_S": "0"}, ["WINDOW_S"]),
        ({**GOOD, "GPU_SOURCE": "tpu"}, ["GPU_SOURCE"]),
        ({**GOOD, "MONGODB_URI": "http://u:hunter2@db"}, ["MONGODB_URI"]),
        ({**GOOD, "SEED_TRACE": "/nonexistent/trace.json"}, ["SEED_TRACE"]),
        ({**GOOD, "WINDOW_S": "0.0005"}, ["WINDOW_S"]),
        ({**GOOD, "PRICE_TABLE": "{not json"}, ["PRICE_TABLE"]),
        ({**GOOD, "PRICE_TABLE": '{"models": {"NVIDIA H200": -1}}'}, ["PRICE_TABLE"]),
        ({**GOOD, "PRICE_TABLE": '{"regions": {}}'}, ["PRICE_TABLE"]),
        ({**GOOD, "MAX_FUTURE_SKEW_S": "-5"}, ["MAX_FUTURE_SKEW_S"]),
    ],
)
def test_bad_settings_stop_with_one_line_and_exit_2(env: dict[str, str], names: list[str]) -> None:
    result = run(env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for name in names:
        assert name in lines[0]
    assert "hunter2" not in result.stderr


def test_help_needs_no_environment() -> None:
    result = run({}, "--help")
    assert result.returncode == 0
    assert "PRICE_PER_HOUR_USD" in result.stdout


def test_settings_never_echo_the_uri() -> None:
    with pytest.raises(ConfigError) as caught:
        load_processor_settings(
            price_per_hour_usd=1, kafka_bootstrap="k:1", mongodb_uri="redis://u:s3cret@h"
        )
    assert "s3cret" not in caught.value.one_line()
    settings = load_processor_settings(
        price_per_hour_usd=1, kafka_bootstrap="k:1", mongodb_uri="mongodb://u:s3cret@h"
    )
    assert "s3cret" not in repr(settings)
