"""`gpucost-processor`: the container's entry point. Settings come from the environment."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from gpucost.errors import ConfigError, ExitStatus, GpucostError, ServiceUnavailable
from gpucost.runtime.documents import Document
from gpucost.runtime.gpu import open_source
from gpucost.runtime.gpu.base import GpuSource
from gpucost.runtime.kafka import consumer_config, ensure_topics, producer_config
from gpucost.runtime.logs import configure_json_logging
from gpucost.runtime.mongo import MongoStore
from gpucost.runtime.processor import Processor
from gpucost.runtime.settings import ProcessorSettings, load_processor_settings

log = logging.getLogger("gpucost.processor")

USAGE = """usage: gpucost-processor

Consumes token events from Kafka, samples the GPUs, writes token_usage and gpu_metrics
to MongoDB and serves /health, /ready and /metrics. Configured by the environment:
  PRICE_PER_HOUR_USD (required)  KAFKA_BOOTSTRAP (required)  MONGODB_URI (required)
  GPU_SOURCE=auto|nvml|smi|seed|agent  WINDOW_S=10  ELECTRICITY_USD_PER_KWH  SEED_TRACE
  PRICE_TABLE (JSON, by node and GPU model)  SAMPLES_TOPIC=gpu_samples  MAX_FUTURE_SKEW_S=300
  KAFKA_TOPIC=token_usage  KAFKA_DLQ_TOPIC=token_usage.dlq  KAFKA_GROUP  HTTP_PORT=8080
"""


def wait_for_kafka(settings: ProcessorSettings) -> None:
    """Bounded wait for the broker and the topics; the container may start first."""
    deadline = time.monotonic() + settings.startup_timeout_s
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    wanted = {settings.kafka_topic, settings.kafka_dlq_topic}
    if settings.gpu_source == "agent":
        wanted.add(settings.samples_topic)
    while True:
        try:
            if settings.kafka_create_topics:
                ensure_topics(settings.kafka_bootstrap, wanted, settings.kafka_partitions)
            topics = admin.list_topics(timeout=5).topics
            missing = wanted - set(topics)
            if not missing:
                if settings.gpu_source == "agent":
                    check_copartitioned(settings, topics)
                return
            problem = f"topics missing: {', '.join(sorted(missing))}"
        except KafkaException as error:
            problem = str(error)
        if time.monotonic() > deadline:
            raise ServiceUnavailable(
                f"Kafka at {settings.kafka_bootstrap} not ready: {problem}",
                hint="check the broker and that the topics exist",
            )
        log.info("waiting for kafka", extra={"problem": problem})
        time.sleep(1.0)


def check_copartitioned(settings: ProcessorSettings, topics: dict[str, Any]) -> None:
    """Events and samples of a node share a partition number only if both topics have
    as many partitions; otherwise two processors could write one GPU's windows."""
    events = len(topics[settings.kafka_topic].partitions)
    samples = len(topics[settings.samples_topic].partitions)
    if events != samples:
        raise ConfigError(
            f"{settings.kafka_topic} has {events} partitions and {settings.samples_topic} "
            f"{samples}: they must match",
            hint="give both topics the same partition count",
        )


async def wait_for_mongo(store: MongoStore, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await store.ping()
            await store.ensure_indexes()
            return
        except PyMongoError as error:
            if time.monotonic() > deadline:
                raise ServiceUnavailable(
                    f"MongoDB not ready: {type(error).__name__}",
                    hint="check MONGODB_URI, the server and the user's rights",
                ) from None
            log.info("waiting for mongodb", extra={"problem": type(error).__name__})
            await asyncio.sleep(1.0)


def ownership_config(settings: ProcessorSettings) -> dict[str, Any]:
    """With agents, the range assignor: it gives each consumer the same partition
    numbers of both topics (equal partition counts, same members), so the owner of a
    node's events owns its samples too. Cooperative-sticky assigns each topic on its
    own and could split them."""
    if settings.gpu_source != "agent":
        return {}
    return {"partition.assignment.strategy": "range"}


async def serve(settings: ProcessorSettings) -> None:
    source: GpuSource | None = None
    notes: list[str] = []
    if settings.gpu_source != "agent":
        source, notes = open_source(settings.gpu_source, seed_path=settings.seed_trace)
    log.info(
        "gpu source chosen",
        extra={"source": source.name if source else "agent", "skipped": notes},
    )
    await asyncio.to_thread(wait_for_kafka, settings)
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        settings.mongodb_uri.get_secret_value(),
        serverSelectionTimeoutMS=3000,
        appname="gpucost-processor",
    )
    store = MongoStore(client, settings.mongodb_db, settings.mongodb_collection_prefix)
    try:
        await wait_for_mongo(store, settings.startup_timeout_s)
        processor = Processor(
            settings,
            store=store,
            source=source,
            source_notes=notes,
            consumer_factory=lambda: Consumer(
                consumer_config(
                    settings.kafka_bootstrap,
                    settings.kafka_group,
                    instance_id=settings.kafka_group_instance_id,
                    **ownership_config(settings),
                )
            ),
            dlq_producer=Producer(producer_config(settings.kafka_bootstrap)),
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, processor.request_stop)
        log.info(
            "processor started",
            extra={
                "topic": settings.kafka_topic,
                "group": settings.kafka_group,
                "window_s": settings.window_s,
                "price_per_hour_usd": settings.price_per_hour_usd,
                "http_port": settings.http_port,
            },
        )
        await processor.run()
        log.info("processor stopped: drained and committed")
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(USAGE, end="")
        sys.exit(ExitStatus.OK)
    try:
        settings = load_processor_settings()
        configure_json_logging(settings.log_level)
        asyncio.run(serve(settings))
    except GpucostError as error:
        print(f"gpucost-processor: {error.one_line()}", file=sys.stderr)
        sys.exit(error.exit_status)
    sys.exit(ExitStatus.OK)


if __name__ == "__main__":
    main()
