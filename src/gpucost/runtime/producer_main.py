"""`gpucost-producer`: publish synthetic or replayed token-usage events to Kafka.

Settings come from flags, then the environment; `--help` needs neither. On SIGTERM or
SIGINT it stops producing, flushes, prints the summary (one JSON object on stdout) and
exits 0 if every event sent was acknowledged.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO, Annotated

import typer

from gpucost.errors import ExitStatus, GpucostError
from gpucost.runtime.logs import JsonFormatter, extra_fields
from gpucost.runtime.producer import EventSource, Publisher, StopFlag, Summary, run
from gpucost.runtime.producer_settings import ProducerSettings, load_producer_settings
from gpucost.runtime.ratelimit import TokenBucket
from gpucost.runtime.synthetic import MODELS, SyntheticEvents, SyntheticSource
from gpucost.runtime.trace_events import replay_source

log = logging.getLogger("gpucost.producer")


def build_source(settings: ProducerSettings) -> EventSource:
    if settings.replay is not None:
        # A replay keeps the recorded rhythm; --rate paces synthetic events only.
        return replay_source(
            str(settings.replay),
            node=settings.node,
            producer=settings.producer_id,
            loop=settings.loop,
            seed=settings.seed,
        )
    events = SyntheticEvents(
        node=settings.node,
        producer=settings.producer_id,
        gpus=settings.gpus,
        model=settings.model,
        seed=settings.seed,
    )
    return SyntheticSource(events, TokenBucket(settings.rate))


def produce(
    settings: ProducerSettings,
    *,
    stop: StopFlag | None = None,
    on_progress: Callable[[Summary], None] | None = None,
) -> Summary:
    """The whole producer as a library call: connect, wait for the broker, publish, flush."""
    publisher = Publisher.connect(settings.bootstrap, settings.topic)
    publisher.wait_for_broker(settings.wait)
    # Built after the wait: a token bucket started earlier would release a burst at once,
    # and a replay would start its schedule late.
    source = build_source(settings)
    return run(
        source,
        publisher,
        count=settings.count,
        duration=settings.duration,
        stop=stop,
        flush_timeout=settings.flush_timeout,
        on_progress=on_progress,
    )


class Readable(logging.Formatter):
    """On a terminal: `level: msg key=value ...`, for a person between progress lines."""

    def format(self, record: logging.LogRecord) -> str:
        pairs = "".join(f" {k}={v}" for k, v in extra_fields(record).items())
        # \r + erase-line: a log line replaces the progress line, which the next report redraws.
        return f"\r\033[K{record.levelname.lower()}: {record.getMessage()}{pairs}"


class Progress:
    """A live `\\r` line on a terminal; a JSON log line per report otherwise."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._live = stream.isatty()

    def __call__(self, summary: Summary) -> None:
        if self._live:
            self._stream.write(
                f"\rrate {summary.rate:>10,.1f}/s  sent {summary.sent:>10,}  "
                f"acked {summary.acked:>10,}  failed {summary.failed:,}  "
            )
            self._stream.flush()
        else:
            log.info("progress", extra=summary.as_dict())

    def done(self) -> None:
        if self._live:
            self._stream.write("\n")


def _setup_logging(stream: IO[str]) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(Readable() if stream.isatty() else JsonFormatter())
    root = logging.getLogger("gpucost")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()
        # A second Ctrl-C during the (bounded) flush interrupts it for the impatient.
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)

_MODELS_HELP = ", ".join(MODELS)


@app.command()
def _main(
    bootstrap: Annotated[
        str | None, typer.Option(help="Kafka brokers, host:port[,...]. Env KAFKA_BOOTSTRAP.")
    ] = None,
    topic: Annotated[
        str | None, typer.Option(help="Topic. Env KAFKA_TOPIC. Default token_usage.")
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            help="Synthetic events per second (a replay keeps its recorded pace). Default 50."
        ),
    ] = None,
    count: Annotated[int | None, typer.Option(help="Stop after this many events.")] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    replay: Annotated[
        Path | None,
        typer.Option(help="Publish the events of this recorded trace.json, shifted to now."),
    ] = None,
    loop: Annotated[bool, typer.Option("--loop", help="Replay the trace again and again.")] = False,
    gpus: Annotated[
        int | None, typer.Option(help="Synthetic GPUs 0..N-1, the message key. Default 1.")
    ] = None,
    node: Annotated[
        str | None, typer.Option(help="Node name. Env NODE. Default: the hostname.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help=f"Only this synthetic model: {_MODELS_HELP}.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed: the same events, ids included.")] = None,
    mark: Annotated[
        str | None, typer.Option(help="Set every event's `producer` field, to find them later.")
    ] = None,
    flush_timeout: Annotated[
        float | None, typer.Option(help="Seconds to wait for acks at the end. Default 30.")
    ] = None,
    wait: Annotated[
        float | None, typer.Option(help="Seconds to wait for the broker at start. Default 30.")
    ] = None,
) -> None:
    """Publish token-usage events to Kafka: synthetic at --rate, or a recorded trace replayed.

    Stops after --count events or --duration seconds, or on SIGTERM/SIGINT; then flushes
    and prints a JSON summary. Flags fall back to PRODUCER_<FLAG> in the environment.

    Example: gpucost-producer --bootstrap 127.0.0.1:9092 --rate 50 --gpus 4
    """
    settings = load_producer_settings(
        bootstrap=bootstrap,
        topic=topic,
        rate=rate,
        count=count,
        duration=duration,
        replay=replay,
        loop=loop or None,
        gpus=gpus,
        node=node,
        model=model,
        seed=seed,
        mark=mark,
        flush_timeout=flush_timeout,
        wait=wait,
    )
    _setup_logging(sys.stderr)
    stop = _stop_on_signals()
    progress = Progress(sys.stderr)
    log.info("starting", extra={"topic": settings.topic, "producer": settings.producer_id})
    started = time.time()
    summary = produce(settings, stop=stop, on_progress=progress)
    progress.done()
    counts = {**summary.as_dict(), "producer": settings.producer_id, "started": started}
    log.info("done", extra=counts)
    typer.echo(json.dumps(counts))
    if summary.failed or summary.pending:
        raise typer.Exit(int(ExitStatus.ERROR))


def main() -> None:
    try:
        # prog_name: under `python -c` or a container's entry point argv[0] is not the name.
        app(prog_name="gpucost-producer")
    except GpucostError as error:
        # Plain text, as the processor's: the container's entry point needs no CLI.
        print(f"gpucost-producer: {error.one_line()}", file=sys.stderr)
        sys.exit(int(error.exit_status))
    except KeyboardInterrupt:  # a second Ctrl-C cut the flush short: the user asked for it
        sys.exit(int(ExitStatus.INTERRUPTED))


if __name__ == "__main__":
    main()
