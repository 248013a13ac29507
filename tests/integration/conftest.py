"""Real things integration tests share: a `gpucost-processor` process against the real
broker and database (runtime and reliability tests), and a real sshd on loopback."""

from __future__ import annotations

import contextlib
import getpass
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from pymongo import MongoClient

from gpucost.runtime.kafka import ensure_topics
from support.pipeline import Pipeline, free_port
from support.sshd import SSHD, Sshd
from support.tools import require_tool

COLLECTIONS = ("token_usage", "gpu_metrics", "pending_windows")


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    """A real sshd on loopback, for the SSH layer and the report's tunnel."""
    require_tool("sshd", "apt-get install -y openssh-server", path=SSHD)
    server = Sshd(tmp_path / "sshd", user=getpass.getuser())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pipeline_factory(
    kafka_bootstrap: str, mongodb_uri: str, tmp_path: Path
) -> Iterator[Callable[..., Pipeline]]:
    """`pipeline = pipeline_factory(window_s=2.0, partitions=3, BATCH_MAX="500")`: its own
    topic, DLQ topic, group and collection prefix; keyword settings go to the environment.
    Processes are killed, collections dropped and topics deleted when the test ends."""
    made: list[Pipeline] = []
    client: MongoClient[Any] = MongoClient(mongodb_uri)

    def make(window_s: float = 2.0, partitions: int = 3, **settings: str) -> Pipeline:
        name = f"it_{uuid.uuid4().hex[:10]}"
        # The samples topic has the events' partition count: a node's events and GPU
        # samples share a partition number (GPU_SOURCE=agent).
        ensure_topics(kafka_bootstrap, [name, f"{name}.dlq", f"{name}.samples"], partitions)
        port = free_port()
        env = {
            **os.environ,
            "PRICE_PER_HOUR_USD": "3.5",
            "KAFKA_BOOTSTRAP": kafka_bootstrap,
            "MONGODB_URI": mongodb_uri,
            "KAFKA_TOPIC": name,
            "KAFKA_DLQ_TOPIC": f"{name}.dlq",
            "KAFKA_GROUP": f"{name}-group",
            "MONGODB_COLLECTION_PREFIX": f"{name}_",
            "GPU_SOURCE": "seed",
            "SAMPLES_TOPIC": f"{name}.samples",
            # The node the test streams' events name (support/streams.py): with a local
            # GPU source, the processor's samples are this node's.
            "NODE": "vm3",
            "WINDOW_S": str(window_s),
            "WINDOW_GRACE_S": "1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(port),
            **settings,
        }
        pipeline = Pipeline(
            topic=name,
            dlq_topic=f"{name}.dlq",
            prefix=f"{name}_",
            bootstrap=kafka_bootstrap,
            env=env,
            http=f"http://127.0.0.1:{port}",
            db=client.get_default_database(),
            log_path=tmp_path / f"{name}.log",
        )
        made.append(pipeline)
        return pipeline

    yield make
    topics: set[str] = set()
    for pipeline in made:
        for process in pipeline.all_processes():
            process.kill()
            process.wait()
        for collection in COLLECTIONS:
            pipeline.db[f"{pipeline.prefix}{collection}"].drop()
        topics |= {pipeline.topic, pipeline.dlq_topic, f"{pipeline.topic}.samples"}
    client.close()
    if topics:
        # Big topics (the reliability tests write 100,000 events) would fill the disk.
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        for future in admin.delete_topics(sorted(topics), operation_timeout=10).values():
            with contextlib.suppress(KafkaException):
                future.result(timeout=30)
