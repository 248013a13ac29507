"""Static group membership (KAFKA_GROUP_INSTANCE_ID): one id, one processor."""

from __future__ import annotations

import json
from typing import Any

import pytest

from support.pipeline import wait_until
from support.streams import event, publish

pytestmark = pytest.mark.integration


def test_a_processor_fenced_by_a_second_one_with_its_id_exits_and_says_why(
    pipeline_factory: Any,
) -> None:
    first = pipeline_factory(partitions=2, KAFKA_GROUP_INSTANCE_ID="processor-a")
    first.start()
    wait_until(lambda: first.assigned_partitions() == 2, timeout=30, what="first assigned")
    second = first.sibling()
    second.start()

    # Before: the fenced consumer went on polling a dead handle, alive and "ready".
    assert first.process is not None
    rc = first.process.wait(60)
    log = first.log_path.read_text()
    assert rc == 1
    assert "Kafka consumer stopped by a fatal error" in log
    assert "another processor uses the same KAFKA_GROUP_INSTANCE_ID" in log
    assert "Traceback" not in log

    # The one that took the id over consumes.
    second.assert_running()
    ids = [event()["event_id"] for _ in range(20)]
    publish(first.bootstrap, first.topic, [json.dumps(event(event_id=i)).encode() for i in ids])
    wait_until(
        lambda: first.token_usage.count_documents({"_id": {"$in": ids}}) == len(ids),
        timeout=30,
        what="the survivor's writes",
    )
