"""Test rings by directory, and fixtures for the real services.

Tests under tests/unit, tests/integration and tests/e2e get the marker of their
ring, so `pytest -m unit` selects them without authors marking anything.

The service fixtures (`kafka_bootstrap`, `mongodb_uri`, `kafka_topic_factory`,
`mongo_namespace`, ...) run `scripts/dev/services.sh start` on first use, which
starts ZooKeeper, Kafka and SecantusDB if they are down and leaves them running
for the next run (`scripts/dev/services.sh stop` ends them). With both
KAFKA_BOOTSTRAP and MONGODB_URI set, those services are used instead. Only
integration and e2e tests may use these fixtures: unit tests never start services.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    # Imported lazily below: unit runs should not pay for the client libraries.
    from confluent_kafka.admin import AdminClient

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
SERVICES_SCRIPT = REPO_ROOT / "scripts" / "dev" / "services.sh"
RINGS = {ring: TESTS_DIR / ring for ring in ("unit", "integration", "e2e")}
SERVICE_RINGS = ("integration", "e2e")
SERVICE_FIXTURES = frozenset(
    {
        "service_env",
        "kafka_bootstrap",
        "mongodb_uri",
        "kafka_topic_factory",
        "mongo_namespace",
    }
)
# A cold start fetches Kafka with Maven first.
START_TIMEOUT_S = 600
TOPIC_READY_TIMEOUT_S = 30


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: the markers must be on the items before `-m` deselects by them.
    for item in items:
        for ring, directory in RINGS.items():
            if item.path.is_relative_to(directory):
                item.add_marker(ring)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # fixturenames is the closure: a fixture built on one of these counts too.
    used = SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    if used and not any(item.get_closest_marker(ring) for ring in SERVICE_RINGS):
        pytest.fail(
            f"{item.nodeid} uses {', '.join(sorted(used))}, which start real services; "
            "move it under tests/integration or mark it integration",
            pytrace=False,
        )


@dataclass(frozen=True)
class ServiceEnv:
    """Where the services answer; the names match the lines of .services/env."""

    kafka_bootstrap: str
    mongodb_uri: str
    mongodb_admin_uri: str | None = None
    zookeeper_connect: str | None = None


def _services_dir() -> Path:
    return Path(os.environ.get("GPUCOST_SERVICES_DIR", REPO_ROOT / ".services"))


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.removeprefix("export ").partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


def _start_services() -> dict[str, str]:
    try:
        result = subprocess.run(
            [str(SERVICES_SCRIPT), "start"],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{SERVICES_SCRIPT} start took over {START_TIMEOUT_S}s", pytrace=False)
    if result.returncode != 0:
        pytest.fail(
            f"{SERVICES_SCRIPT} start failed ({result.returncode}):\n{result.stderr}",
            pytrace=False,
        )
    return read_env_file(_services_dir() / "env")


@pytest.fixture(scope="session")
def services_dir() -> Path:
    """Where scripts/dev/services.sh keeps pidfiles, logs and data (GPUCOST_SERVICES_DIR)."""
    return _services_dir()


@pytest.fixture(scope="session")
def service_env() -> ServiceEnv:
    """The running services, started by scripts/dev/services.sh unless given by env vars."""
    if os.environ.get("KAFKA_BOOTSTRAP") and os.environ.get("MONGODB_URI"):
        values = dict(os.environ)
    else:
        values = _start_services()
    return ServiceEnv(
        kafka_bootstrap=values["KAFKA_BOOTSTRAP"],
        mongodb_uri=values["MONGODB_URI"],
        mongodb_admin_uri=values.get("MONGODB_ADMIN_URI"),
        zookeeper_connect=values.get("ZOOKEEPER_CONNECT"),
    )


@pytest.fixture(scope="session")
def kafka_bootstrap(service_env: ServiceEnv) -> str:
    """The broker's bootstrap address, e.g. 127.0.0.1:9092."""
    return service_env.kafka_bootstrap


@pytest.fixture(scope="session")
def mongodb_uri(service_env: ServiceEnv) -> str:
    """URI of the `gpucost` user: readWrite on database `gpucost`, nothing else."""
    return service_env.mongodb_uri


def _topic_name(test_name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", test_name).strip("-")[:120]
    return f"test.{slug}.{uuid.uuid4().hex[:8]}"


def _wait_for_leaders(admin: AdminClient, topic: str, partitions: int) -> None:
    # CreateTopics returns before the controller has elected leaders; a producer
    # that starts at once would see UNKNOWN_TOPIC_OR_PART for a moment.
    deadline = time.monotonic() + TOPIC_READY_TIMEOUT_S
    while True:
        meta = admin.list_topics(topic=topic, timeout=5).topics.get(topic)
        if (
            meta is not None
            and meta.error is None
            and len(meta.partitions) == partitions
            and all(p.leader >= 0 for p in meta.partitions.values())
        ):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"topic {topic} has no leaders after {TOPIC_READY_TIMEOUT_S}s")
        time.sleep(0.1)


@pytest.fixture
def kafka_topic_factory(
    kafka_bootstrap: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., str]]:
    """Create uniquely named topics: `topic = kafka_topic_factory(partitions=3)`.

    Each topic has one replica and leaders for all its partitions when returned;
    all are deleted when the test ends.
    """
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    created: list[str] = []

    def create(partitions: int = 3, config: dict[str, str] | None = None) -> str:
        name = _topic_name(request.node.name)
        new = NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})
        admin.create_topics([new], operation_timeout=10)[name].result(timeout=30)
        created.append(name)
        _wait_for_leaders(admin, name, partitions)
        return name

    yield create
    if created:
        for future in admin.delete_topics(created, operation_timeout=10).values():
            future.result(timeout=30)


@dataclass(frozen=True)
class MongoNamespace:
    """A test's own corner of the database: collections named `prefix + name`.

    The `gpucost` user may write only its one database, so tests are isolated by
    collection prefix rather than by database.
    """

    uri: str
    database: str
    prefix: str

    def collection(self, name: str) -> str:
        return f"{self.prefix}{name}"


@pytest.fixture
def mongo_namespace(mongodb_uri: str) -> Iterator[MongoNamespace]:
    """A unique collection prefix in the `gpucost` database, dropped after the test.

    Example: `client[ns.database][ns.collection("usage")]`.
    """
    from pymongo import MongoClient
    from pymongo.uri_parser import parse_uri

    database = parse_uri(mongodb_uri)["database"] or "gpucost"
    namespace = MongoNamespace(mongodb_uri, database, f"t_{uuid.uuid4().hex[:12]}_")
    yield namespace
    with MongoClient(mongodb_uri, serverSelectionTimeoutMS=5000) as client:
        db = client[database]
        for name in db.list_collection_names():
            if name.startswith(namespace.prefix):
                db.drop_collection(name)
