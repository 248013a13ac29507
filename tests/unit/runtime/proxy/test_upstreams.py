"""PROXY_UPSTREAMS: both forms, checked, and routing by model."""

import json

import pytest

from gpucost.runtime.proxy.upstreams import Upstream, parse_upstreams, route

pytestmark = pytest.mark.unit


def test_short_form() -> None:
    a, b = parse_upstreams("http://127.0.0.1:8080/@gpu1:0, big=http://10.0.0.6:8000@gpu2:GPU-5d1e")
    assert a == Upstream("upstream0", "http://127.0.0.1:8080", "gpu1", 0)
    assert b == Upstream("big", "http://10.0.0.6:8000", "gpu2", "GPU-5d1e")


def test_short_form_defaults_node_and_gpu() -> None:
    (only,) = parse_upstreams("http://127.0.0.1:8080")
    assert only.gpu == 0
    assert only.node


def test_json_form_and_routing() -> None:
    upstreams = parse_upstreams(
        json.dumps(
            [
                {"name": "a", "url": "http://h1:1", "node": "n1", "gpu": 1},
                {"name": "b", "url": "http://h2:2", "node": "n2", "gpu": 0, "models": ["big"]},
            ]
        )
    )
    assert route(upstreams, "big").name == "b"
    assert route(upstreams, "other").name == "a"
    assert route(upstreams, None).name == "a"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ftp://h:1",
        "not a url",
        "[{}]",
        '{"url": "http://h:1"}',
        "[1",
        "a=http://h:1,a=http://h:2",
        "http://h:1@n:bad gpu",
    ],
)
def test_bad_upstreams(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_upstreams(text)
