"""`gpucost-agent`: the container's entry point beside the inference servers on a GPU host.

Settings come from the environment. Logs are JSON lines on stderr; at the end (SIGTERM or
SIGINT) it flushes, prints its summary (one JSON object) on stdout and exits 0 if every
sample it took reached Kafka or was dropped by the bound and reported, 1 if some could
not be sent before the flush timed out.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

from confluent_kafka import KafkaException, Producer

from gpucost.errors import ExitStatus, GpucostError
from gpucost.runtime.agent import Agent, AgentSummary, Sender, StopFlag, agent_producer_config
from gpucost.runtime.agent import window as client_window
from gpucost.runtime.agent_outbox import Outbox
from gpucost.runtime.agent_settings import AgentSettings, load_agent_settings
from gpucost.runtime.gpu import open_source
from gpucost.runtime.kafka import ensure_topics
from gpucost.runtime.logs import configure_json_logging

log = logging.getLogger("gpucost.agent")
KAFKA_LOGGER = "gpucost.agent.kafka"

USAGE = """usage: gpucost-agent

Samples every GPU of this host (NVML, else nvidia-smi, else the recorded trace) each
interval and publishes the samples to Kafka, keyed by node. Configured by the environment:
  KAFKA_BOOTSTRAP (required)  NODE (default: the hostname)  GPU_SOURCE=auto|nvml|smi|seed
  SEED_TRACE  SAMPLE_INTERVAL_S=1  SAMPLES_TOPIC=gpu_samples  AGENT_ID
  BUFFER_MAX_SAMPLES=100000  KAFKA_CREATE_TOPICS=false  KAFKA_PARTITIONS=3
  KAFKA_TOPIC=token_usage (only compared)  KAFKA_WAIT_S=10  FLUSH_TIMEOUT_S=10
  PROGRESS_INTERVAL_S=30  LOG_LEVEL=INFO
"""


class TopicMissing(GpucostError):
    """The broker answered and the samples topic is not there."""


def check_topics(producer: Producer, settings: AgentSettings) -> None:
    """Create (if asked) and look for the samples topic, for at most KAFKA_WAIT_S.

    A broker that does not answer is not fatal: the agent samples and buffers until it
    does. A broker that answers without the topic is: nothing would ever be delivered.
    """
    if settings.kafka_create_topics:
        try:
            ensure_topics(
                settings.kafka_bootstrap, [settings.samples_topic], settings.kafka_partitions
            )
        except KafkaException as error:
            log.warning("could not create the samples topic", extra={"error": str(error)})
    deadline = time.monotonic() + settings.kafka_wait_s
    while True:
        try:
            # Asking by name also creates it where the broker auto-creates topics.
            metadata = producer.list_topics(
                settings.samples_topic, timeout=max(0.5, min(5.0, deadline - time.monotonic()))
            )
        except KafkaException as error:
            if time.monotonic() >= deadline:
                log.warning(
                    "kafka does not answer yet; sampling and buffering until it does",
                    extra={"error": str(error), "bootstrap": settings.kafka_bootstrap},
                )
                return
            time.sleep(0.5)
            continue
        topic = metadata.topics.get(settings.samples_topic)
        if topic is not None and topic.error is None and topic.partitions:
            _compare_partitions(producer, settings, len(topic.partitions))
            return
        if time.monotonic() >= deadline:
            raise TopicMissing(
                f"topic {settings.samples_topic!r} does not exist on {settings.kafka_bootstrap}",
                hint="create it with as many partitions as the token topic, "
                "or set KAFKA_CREATE_TOPICS=true",
            )
        time.sleep(0.5)


def _compare_partitions(producer: Producer, settings: AgentSettings, samples: int) -> None:
    # A node's events and samples share a partition only if both topics have as many.
    try:
        events = producer.list_topics(settings.events_topic, timeout=5).topics.get(
            settings.events_topic
        )
    except KafkaException:
        return
    if events is None or events.error is not None or not events.partitions:
        return
    if len(events.partitions) != samples:
        log.warning(
            "the samples and token topics have different partition counts: a node's samples "
            "and events will land on different partitions",
            extra={
                settings.samples_topic: samples,
                settings.events_topic: len(events.partitions),
            },
        )


def run_agent(
    settings: AgentSettings,
    *,
    stop: StopFlag | None = None,
    max_ticks: int | None = None,
    on_start: Callable[[Agent], None] | None = None,
) -> AgentSummary:
    """The whole agent as a library call: open the GPU source, connect, sample, flush."""
    source, notes = open_source(settings.gpu_source, seed_path=settings.seed_trace)
    try:
        log.info(
            "gpu source chosen",
            extra={"source": source.name, "skipped": notes, "gpus": source.describe()},
        )
        config = agent_producer_config(settings.kafka_bootstrap)
        config["error_cb"] = _log_client_error
        kafka_log = logging.getLogger(KAFKA_LOGGER)
        if _throttle not in kafka_log.filters:
            kafka_log.addFilter(_throttle)
        config["logger"] = kafka_log
        producer = Producer(config)
        check_topics(producer, settings)
        window = client_window(settings.buffer_max_samples)
        buffer = Outbox(settings.buffer_max_samples - window)
        agent = Agent(
            source,
            Sender(producer, settings.samples_topic, settings.node, buffer, window),
            node=settings.node,
            interval_s=settings.sample_interval_s,
            agent_id=settings.publisher_id,
            progress_every_s=settings.progress_interval_s,
        )
        log.info(
            "agent started",
            extra={
                "node": settings.node,
                "topic": settings.samples_topic,
                "interval_s": settings.sample_interval_s,
                "buffer_max_samples": settings.buffer_max_samples,
                "agent": settings.publisher_id,
            },
        )
        if on_start is not None:
            on_start(agent)
        return agent.run(stop, max_ticks=max_ticks, flush_timeout_s=settings.flush_timeout_s)
    finally:
        source.close()


class Throttle(logging.Filter):
    """Lets each kind of line through once per `every_s`: during an outage librdkafka
    reports the same failure on every reconnect attempt, several times a second. Lines
    that differ only in their numbers ("after 0ms", "after 2ms") are one kind."""

    def __init__(self, every_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.every_s = every_s
        self.clock = clock
        self._last: dict[str, float] = {}

    def allow(self, text: str) -> bool:
        kind = re.sub(r"\d+", "#", text)
        now = self.clock()
        if now - self._last.get(kind, -self.every_s) < self.every_s:
            return False
        if len(self._last) > 1000:  # bounded, whatever the client says
            self._last.clear()
        self._last[kind] = now
        return True

    def filter(self, record: logging.LogRecord) -> bool:
        return self.allow(record.getMessage())


_throttle = Throttle()


def _log_client_error(error: object) -> None:
    if _throttle.allow(str(error)):
        log.warning("kafka client error", extra={"error": str(error)})


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(USAGE, end="")
        sys.exit(ExitStatus.OK)
    if args:
        print(f"gpucost-agent: takes no arguments, got {args[0]!r} (see --help)", file=sys.stderr)
        sys.exit(ExitStatus.USAGE)
    try:
        settings = load_agent_settings()
        configure_json_logging(settings.log_level)
        if settings.log_level != "DEBUG":
            # librdkafka says "Disconnected" at info on every reconnect attempt of an
            # outage; its warnings and errors (and our own counts) are what matter.
            logging.getLogger(KAFKA_LOGGER).setLevel(logging.WARNING)
        stop = _stop_on_signals()
        summary = run_agent(settings, stop=stop)
    except GpucostError as error:
        print(f"gpucost-agent: {error.one_line()}", file=sys.stderr)
        sys.exit(error.exit_status)
    log.info("agent stopped", extra=summary.as_dict())
    print(json.dumps(summary.as_dict()), flush=True)
    sys.exit(ExitStatus.ERROR if summary.unsent or summary.failed else ExitStatus.OK)


if __name__ == "__main__":
    main()
