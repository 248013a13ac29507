"""A cuttable TCP proxy for a Kafka client: every connection the client makes goes through it.

A plain TCP proxy in front of Kafka only carries the bootstrap connection: the broker's
metadata then tells the client to connect to the broker's advertised address, around the
proxy. This one reads the Kafka frames going back to the client and, in each Metadata
response, replaces the broker's advertised port by the proxy's own (the host is the same
loopback address), so cutting the proxy cuts the client off the broker entirely, while
the shared broker and every other client go on untouched.
"""

from __future__ import annotations

import socket
import struct
import threading

from support.tcp_proxy import TcpProxy

METADATA = 3
FLEXIBLE_FROM = 9
"""Metadata v9 and later use compact (varint) lengths and tagged fields."""


class KafkaCutProxy(TcpProxy):
    def __init__(self, target: tuple[str, int], *, lifetime_s: float = 600.0) -> None:
        # (upstream socket, correlation id) -> (api key, api version) of requests in flight.
        self._requests: dict[tuple[int, int], tuple[int, int]] = {}
        self._requests_lock = threading.Lock()
        self.rewritten = 0
        super().__init__(target, lifetime_s=lifetime_s)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            to_server = _peer_port(dst) == self.target[1]
            upstream = dst if to_server else src
            while True:
                frame = _read_frame(src)
                if frame is None:
                    break
                if to_server:
                    key, version, correlation = struct.unpack_from(">hhi", frame, 4)
                    with self._requests_lock:
                        self._requests[(upstream.fileno(), correlation)] = (key, version)
                else:
                    (correlation,) = struct.unpack_from(">i", frame, 4)
                    with self._requests_lock:
                        request = self._requests.pop((upstream.fileno(), correlation), None)
                    if request is not None and request[0] == METADATA:
                        frame = self._rewrite_metadata(frame, request[1])
                dst.sendall(frame)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                self._forget(sock)

    def _rewrite_metadata(self, frame: bytes, version: int) -> bytes:
        data = bytearray(frame)
        flexible = version >= FLEXIBLE_FROM
        at = 8  # size, correlation id
        if flexible:
            at = _skip_tags(data, at)  # response header v1
        if version >= 3:
            at += 4  # throttle_time_ms
        if flexible:
            count, at = _uvarint(data, at)
            count -= 1
        else:
            (count,) = struct.unpack_from(">i", data, at)
            at += 4
        for _ in range(max(count, 0)):
            at += 4  # node_id
            at = _skip_string(data, at, flexible)
            (port,) = struct.unpack_from(">i", data, at)
            if port == self.target[1]:
                struct.pack_into(">i", data, at, self.port)
                self.rewritten += 1
            at += 4
            if version >= 1:
                at = _skip_string(data, at, flexible)  # rack
            if flexible:
                at = _skip_tags(data, at)
        return bytes(data)


def _peer_port(sock: socket.socket) -> int | None:
    try:
        return int(sock.getpeername()[1])
    except OSError:
        return None


def _read_frame(sock: socket.socket) -> bytes | None:
    head = _read_exact(sock, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">i", head)
    body = _read_exact(sock, size)
    return None if body is None else head + body


def _read_exact(sock: socket.socket, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 65536))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _uvarint(data: bytearray, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _skip_string(data: bytearray, at: int, flexible: bool) -> int:
    if flexible:
        length, at = _uvarint(data, at)
        return at + max(length - 1, 0)
    (length,) = struct.unpack_from(">h", data, at)
    return at + 2 + max(length, 0)


def _skip_tags(data: bytearray, at: int) -> int:
    count, at = _uvarint(data, at)
    for _ in range(count):
        _tag, at = _uvarint(data, at)
        size, at = _uvarint(data, at)
        at += size
    return at
