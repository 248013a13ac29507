"""Case 3: the Kafka broker is killed with SIGKILL mid-stream and started again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from support.pipeline import Pipeline, wait_until
from support.streams import EventStream, store_count, stored_event_ids

pytestmark = pytest.mark.integration

SERVICES = Path(__file__).resolve().parents[3] / "scripts" / "dev" / "services.sh"
RATE = 500  # events/s offered
STREAM_S = 30  # the broker dies about a third of the way in
DOWN_S = 3.0  # dead for this long before the restart begins


def broker_pid(services_dir: Path) -> int:
    pid = int((services_dir / "kafka" / "kafka.pid").read_text())
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    assert b"server.properties" in cmdline, "the pidfile does not name our broker"
    return pid


def start_services() -> None:
    subprocess.run([str(SERVICES), "start"], check=True, timeout=240, capture_output=True)


def test_broker_kill_9_every_acknowledged_event_stored_once(
    pipeline_factory: Any, services_dir: Path, figures: dict[str, Any]
) -> None:
    pipeline: Pipeline = pipeline_factory(partitions=3)
    pipeline.start()
    processor_pid = pipeline.pid
    count = RATE * STREAM_S
    # Retries span the outage: a send is acknowledged, or it fails after 5 minutes.
    stream = EventStream(pipeline.bootstrap, pipeline.topic, count, rate=RATE, flush_timeout_s=300)
    stream.start()
    try:
        wait_until(
            lambda: pipeline.token_usage.estimated_document_count() >= count // 4,
            timeout=60,
            what="a quarter of the stream stored",
        )
        pid = broker_pid(services_dir)
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        acked_at_kill = len(stream.acks.acked)
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout=10, what="the broker gone")
        time.sleep(DOWN_S)
    finally:
        # Whatever happened above, the services must be up for the tests that follow.
        start_services()
    back = time.monotonic()
    wait_until(lambda: not stream.is_alive(), timeout=300, what="every send settled")
    stream.finish(timeout=5)
    wait_until(
        lambda: (
            pipeline.token_usage.estimated_document_count() >= len(stream.acks.acked)
            and pipeline.lag() == 0
        ),
        timeout=90,
        what="every acknowledged event stored and lag 0",
        every=0.5,
    )
    caught_up_s = time.monotonic() - back
    acked = set(stream.acks.acked)
    ids = stored_event_ids(pipeline.token_usage)
    stored = store_count(pipeline.token_usage)
    figures.update(
        events_sent=stream.sent,
        acknowledged=len(acked),
        acknowledged_before_kill=acked_at_kill,
        produce_failed=len(stream.acks.failed),
        produce_errors=dict(Counter(stream.acks.failed.values()).most_common(3)),
        broker_down_s=round(back - killed, 1),
        caught_up_after_broker_back_s=round(caught_up_s, 1),
        documents=stored.documents,
        duplicates=stored.duplicates,
        lost=len(acked - ids),
        stored_but_not_acknowledged=len(ids - acked),
        processor_restarted=pipeline.pid != processor_pid,
    )
    assert pipeline.process is not None
    assert pipeline.process.poll() is None
    assert pipeline.pid == processor_pid
    assert stored.duplicates == 0
    assert acked <= ids
    # A send that failed may still have been written before the broker died: at most once.
    assert ids <= acked | set(stream.acks.failed)


def test_gpucost_producer_gets_every_event_acknowledged_across_a_broker_kill(
    pipeline_factory: Any, services_dir: Path, figures: dict[str, Any]
) -> None:
    """The producer's side of case 3: nothing it sent is left unacknowledged, and the
    processor stores each of its events once."""
    pipeline: Pipeline = pipeline_factory(partitions=3)
    pipeline.start()
    mark = f"resend-{pipeline.topic}"
    argv = [sys.executable, "-m", "gpucost.runtime.producer_main", "--mark", mark]
    argv += ["--bootstrap", pipeline.bootstrap, "--topic", pipeline.topic, "--gpus", "3"]
    argv += ["--rate", str(RATE), "--duration", "20", "--flush-timeout", "120"]
    producer = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        wait_until(
            lambda: pipeline.token_usage.estimated_document_count() >= 2 * RATE,
            timeout=60,
            what="two seconds of events stored",
        )
        pid = broker_pid(services_dir)
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout=10, what="the broker gone")
        time.sleep(DOWN_S)
    finally:
        start_services()
    back = time.monotonic()
    out, _ = producer.communicate(timeout=240)
    summary = json.loads(out.strip().splitlines()[-1])
    wait_until(
        lambda: pipeline.token_usage.count_documents({"producer": mark}) >= summary["acked"],
        timeout=90,
        what="every acknowledged event stored",
        every=0.5,
    )
    stored = store_count(pipeline.token_usage)
    figures.update(
        sent=summary["sent"],
        acked=summary["acked"],
        failed=summary["failed"],
        pending=summary["pending"],
        resent=summary["resent"],
        last_error=summary["last_error"],
        broker_down_s=round(back - killed, 1),
        documents=stored.documents,
        duplicates=stored.duplicates,
    )
    assert producer.returncode == 0, summary
    assert (summary["failed"], summary["pending"]) == (0, 0)
    assert summary["acked"] == summary["sent"]
    assert stored.documents == stored.distinct_event_ids == summary["sent"]
