"""Reading a report from MongoDB: the windows and, per model, the server's sums.

Per GPU comes from `gpu_metrics` (one document per GPU and window). Per model comes
from `token_usage`, grouped in the server by (model, GPU, window), so the client gets
one row per window a model used, never one per event; `report.by_model` joins them
with the windows for their cost, energy and power.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote_plus

from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import PyMongoError

from gpucost.errors import ServiceUnavailable
from gpucost.report.summary import (
    NO_TENANT,
    By,
    Doc,
    ModelWindow,
    NoData,
    Report,
    gpu_label,
    number,
    summarize,
)

SERVER_SELECTION_MS = 5000


def fetch_windows(db: Database[Doc], since_start: float, prefix: str = "") -> list[Doc]:
    """`gpu_metrics` windows that start at or after `since_start`, oldest first."""
    cursor = db[f"{prefix}gpu_metrics"].find(
        {"window_start": {"$gte": since_start}}, {"_id": 0, "updated_at": 0, "revision": 0}
    )
    return sorted(cursor, key=lambda w: (float(w["window_start"]), gpu_label(w)))


def model_window_match(since_start: float, gpus: Sequence[tuple[str, str]] = ()) -> Doc:
    """The events of windows starting at or after `since_start`, through the
    processor's `(node, gpu, window_start)` index when the GPUs are known."""
    recent: Doc = {"window_start": {"$gte": since_start}}
    if not gpus:
        return recent
    nodes = sorted({node for node, _ in gpus})
    names = sorted({gpu for _, gpu in gpus})
    return {"node": {"$in": nodes}, "gpu": {"$in": names}, **recent}


def model_window_pipeline(
    since_start: float, gpus: Sequence[tuple[str, str]] = (), key: str = "model"
) -> list[Doc]:
    """Sums per (model or tenant, GPU, window), computed by the server."""
    return [
        {"$match": model_window_match(since_start, gpus)},
        {
            "$group": {
                "_id": {
                    "model": f"${key}",
                    "node": "$node",
                    "gpu": "$gpu",
                    "window_start": "$window_start",
                },
                "requests": {"$sum": 1},
                "total_tokens": {"$sum": "$total_tokens"},
                "completion_tokens": {"$sum": "$completion_tokens"},
                "allocated_cost_usd": {"$sum": "$allocated_cost_usd"},
                "costed": {"$sum": {"$cond": [{"$eq": ["$costed", True]}, 1, 0]}},
            }
        },
    ]


def fetch_model_windows(
    db: Database[Doc],
    since_start: float,
    prefix: str = "",
    gpus: Sequence[tuple[str, str]] = (),
    key: str = "model",
) -> list[ModelWindow]:
    """One row per (model or tenant, GPU, window); `gpus` narrows the scan to their GPUs."""
    pipeline = model_window_pipeline(since_start, gpus, key)
    rows = db[f"{prefix}token_usage"].aggregate(pipeline)
    missing = NO_TENANT if key == "tenant" else "unknown"
    shares = []
    for row in rows:
        group = row["_id"]
        requests = int(row["requests"])
        uncosted = requests - int(row.get("costed") or 0)
        shares.append(
            ModelWindow(
                model=str(group.get("model") or missing),
                gpu=str(group["gpu"]),
                node=str(group.get("node") or ""),
                window_start=float(group["window_start"]),
                requests=requests,
                total_tokens=int(row.get("total_tokens") or 0),
                completion_tokens=int(row.get("completion_tokens") or 0),
                # $sum skips nulls, so a partly costed window's sum would be too small.
                allocated_cost_usd=None if uncosted else number(row.get("allocated_cost_usd")),
                uncosted=uncosted,
            )
        )
    return shares


@contextmanager
def open_database(uri: str, database: str | None = None) -> Iterator[Database[Doc]]:
    """The pipeline's database: `database`, else the URI's, else `gpucost`."""
    client: MongoClient[Doc] = MongoClient(uri, serverSelectionTimeoutMS=SERVER_SELECTION_MS)
    try:
        yield client[database or client.get_default_database("gpucost").name]
    finally:
        client.close()


def read_report(
    uri: str,
    *,
    since_s: float,
    now: float,
    by: By = "gpu",
    price_per_hour_usd: float | None = None,
    database: str | None = None,
    prefix: str = "",
) -> Report:
    """Read the last `since_s` seconds from MongoDB at `uri` and summarise them.

    The seam for every way of reaching the database: the local pipeline passes its
    MONGODB_URI; a deployment passes a URI through an SSH tunnel's local port.
    """
    since_start = now - since_s
    try:
        with open_database(uri, database) as db:
            windows = fetch_windows(db, since_start, prefix)
            gpus = sorted({(str(w.get("node") or ""), str(w["gpu"])) for w in windows})
            shares = [] if by == "gpu" else fetch_model_windows(db, since_start, prefix, gpus, by)
    except PyMongoError as error:
        raise ServiceUnavailable(
            f"cannot read the pipeline's collections: {type(error).__name__}: {error}"[:300],
            hint="check MONGODB_URI (or the deployment's tunnel) and that the server is up",
        ) from None
    if not windows and not shares:
        raise NoData(
            f"no gpu_metrics windows in the last {since_s:g} s",
            hint="is the processor running and writing to this database?",
        )
    return summarize(
        windows, by=by, shares=shares, price_per_hour_usd=price_per_hour_usd, since_s=since_s
    )


# ---- reaching the database -----------------------------------------------------------


class Forward(Protocol):
    """A running local port forward."""

    @property
    def port(self) -> int: ...

    def close(self) -> None: ...


class PortForwarder(Protocol):
    """What a report needs from an SSH connection (`SshConnection` is one): a local
    port that reaches `remote_host:remote_port` as seen from the SSH server."""

    def forward_local_port(self, remote_host: str, remote_port: int) -> Forward: ...


@dataclass(frozen=True, slots=True)
class MongoCredentials:
    """The report's login on a deployment's MongoDB, as the deploy over SSH stored it."""

    username: str
    password: str
    database: str = "gpucost"
    host: str = "127.0.0.1"
    """Where MongoDB listens as seen from the SSH host (vm2: its own private address)."""
    port: int = 27017
    auth_source: str | None = None


def tunnelled_uri(credentials: MongoCredentials, local_port: int) -> str:
    """The URI that reaches a deployment's MongoDB through a tunnel's local end.

    `directConnection`: the server would otherwise announce its own host name, which
    only resolves inside the deployment, and the driver would leave the tunnel for it.
    """
    auth = quote_plus(credentials.auth_source or credentials.database)
    return (
        f"mongodb://{quote_plus(credentials.username)}:{quote_plus(credentials.password)}"
        f"@127.0.0.1:{local_port}/{quote_plus(credentials.database)}"
        f"?authSource={auth}&directConnection=true"
    )


@contextmanager
def tunnelled(forwarder: PortForwarder, credentials: MongoCredentials) -> Iterator[str]:
    """A MongoDB URI valid while the SSH tunnel to the deployment's database is open.

    Never a firewall change: MongoDB's port stays open to the processor alone, and the
    report reaches it over SSH as the admin already may.
    """
    forward = forwarder.forward_local_port(credentials.host, credentials.port)
    try:
        yield tunnelled_uri(credentials, forward.port)
    finally:
        forward.close()
