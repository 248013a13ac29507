"""The inference servers behind the proxy, where each runs, and which one a request goes to.

Configured as PROXY_UPSTREAMS, either a JSON list of objects
`[{"name": "a", "url": "http://10.0.0.5:8000", "node": "gpu1", "gpu": 0, "models": ["m"]}]`
or the short form `[NAME=]URL[@NODE[:GPU]]`, entries separated by commas, e.g.
`http://127.0.0.1:8080@gpu1:0,big=http://10.0.0.6:8000@gpu2:GPU-5d1e`. A request goes
to the first upstream listing its model, else to the first upstream.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from gpucost.runtime.events import GpuId


@dataclass(frozen=True, slots=True)
class Upstream:
    name: str
    url: str
    """Base URL without a trailing slash; request paths (/v1/...) are appended."""
    node: str
    gpu: GpuId
    """The GPU the upstream serves from, as the processor on that node names it."""
    models: tuple[str, ...] = field(default=())


def parse_upstreams(text: str) -> list[Upstream]:
    """Either form, checked: raises ValueError with a message naming the bad entry."""
    text = text.strip()
    if not text:
        raise ValueError("no upstream given")
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError as error:
            raise ValueError(f"not valid JSON: {error}") from None
        if not isinstance(items, list):
            raise ValueError("expected a JSON list of upstreams")
        upstreams = [_from_json(i, item) for i, item in enumerate(items)]
    else:
        upstreams = [_from_short(i, entry) for i, entry in enumerate(text.split(","))]
    if not upstreams:
        raise ValueError("no upstream given")
    names = [u.name for u in upstreams]
    if len(set(names)) != len(names):
        raise ValueError("upstream names must differ")
    return upstreams


def route(upstreams: list[Upstream], model: str | None) -> Upstream:
    if model is not None:
        for upstream in upstreams:
            if model in upstream.models:
                return upstream
    return upstreams[0]


def _from_short(index: int, entry: str) -> Upstream:
    entry = entry.strip()
    name, eq, rest = entry.partition("=")
    if not eq or "://" in name:
        name, rest = f"upstream{index}", entry
    url, at, where = rest.rpartition("@") if "@" in rest.split("://", 1)[-1] else (rest, "", "")
    node, _, gpu = where.partition(":") if at else ("", "", "")
    return _checked(name, url, node or None, gpu or None, ())


def _from_json(index: int, item: object) -> Upstream:
    if not isinstance(item, dict) or not isinstance(item.get("url"), str):
        raise ValueError(f"upstream {index}: expected an object with a url")
    models = item.get("models", [])
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise ValueError(f"upstream {index}: models must be a list of names")
    gpu = item.get("gpu")
    return _checked(
        str(item.get("name") or f"upstream{index}"),
        item["url"],
        None if item.get("node") is None else str(item["node"]),
        None if gpu is None else str(gpu),
        tuple(models),
    )


def _checked(
    name: str, url: str, node: str | None, gpu: str | None, models: tuple[str, ...]
) -> Upstream:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"upstream {name}: {url!r} is not an http(s) URL")
    gpu_id: GpuId = 0 if gpu is None else int(gpu) if gpu.isdigit() else gpu
    if isinstance(gpu_id, str) and not all(c.isalnum() or c in "._:/-" for c in gpu_id):
        raise ValueError(f"upstream {name}: GPU {gpu_id!r} is not an index or a GPU id")
    return Upstream(name, url.rstrip("/"), node or socket.gethostname(), gpu_id, models)
