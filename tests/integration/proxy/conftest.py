"""The proxy's integration ring: a real llama-server, the shared broker, real proxies."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.llama import LlamaServer, LlamaUnavailable, cached_model, fetch_llama_server
from support.proxy_process import ProxyProcess

NODE = "gpu-node-1"
GPU = "0"


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """llama-server on a free loopback port, serving the tiny random-weight model.

    Built on first use by scripts/dev/llama-fetch.sh (minutes, once per cache). Where it
    cannot be built the tests skip, except under CI=true, where that is a failure.
    """
    try:
        binary = fetch_llama_server()
        model = cached_model(binary)
    except (LlamaUnavailable, OSError) as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"llama-server unavailable under CI: {error}", pytrace=False)
        pytest.skip(f"llama-server unavailable: {error}")
    server = LlamaServer(binary, model, tmp_path_factory.mktemp("llama") / "llama-server.log")
    try:
        server.start()
    except LlamaUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def proxy_factory(
    llama_server: LlamaServer,
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., str],
    tmp_path: Path,
) -> Iterator[Callable[..., ProxyProcess]]:
    """`proxy = proxy_factory(topic=..., bootstrap=..., **PROXY_SETTINGS)`: a started
    gpucost-proxy in front of the llama-server, with its own topic and spool."""
    made: list[ProxyProcess] = []

    def make(
        topic: str | None = None, bootstrap: str | None = None, **settings: str
    ) -> ProxyProcess:
        keys = tmp_path / f"keys-{len(made)}.json"
        keys.write_text(json.dumps({"sk-team-a": "team-a", "sk-team-b": "team-b"}))
        keys.chmod(0o600)
        env = {
            **os.environ,
            "PROXY_UPSTREAMS": f"llama={llama_server.url}@{NODE}:{GPU}",
            "KAFKA_BOOTSTRAP": bootstrap or kafka_bootstrap,
            "KAFKA_TOPIC": topic or kafka_topic_factory(partitions=1),
            "PROXY_SPOOL_DIR": str(tmp_path / f"spool-{len(made)}"),
            "PROXY_TENANT_KEYS_FILE": str(keys),
            "PROXY_PRODUCER": "gpucost-proxy-test",
            **settings,
        }
        proxy = ProxyProcess(env, tmp_path / f"proxy-{len(made)}.log")
        made.append(proxy)
        proxy.start()
        return proxy

    yield make
    for proxy in made:
        proxy.kill()
