"""A TCP proxy on loopback that a test can cut, to take a server away without stopping it."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from types import TracebackType


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target`. `cut()` resets every open connection and
    resets each new one at once (the client sees a refused link) until `restore()`.

    Bounded: it stops by itself after `lifetime_s`, and `close()` (or leaving the `with`
    block) stops it at once. Threads only; one pair of pump threads per connection.
    """

    def __init__(self, target: tuple[str, int], *, lifetime_s: float = 600.0) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._deadline = time.monotonic() + lifetime_s
        self._cut = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self.accepted = 0
        self.refused = 0
        self._thread = threading.Thread(target=self._accept_forever, name="tcp-proxy", daemon=True)
        self._thread.start()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def cut(self) -> None:
        self._cut.set()
        self._reset_all()

    def restore(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self._closed.set()
        self._reset_all()
        self._thread.join(5)
        self._listener.close()

    def _accept_forever(self) -> None:
        while not self._closed.is_set() and time.monotonic() < self._deadline:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            if self._cut.is_set():
                self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._open |= {client, upstream}
            self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()
        self._closed.set()
        self._reset_all()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                self._forget(sock)

    def _reset_all(self) -> None:
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            _reset(sock)

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            known = sock in self._open
            self._open.discard(sock)
        if known:
            _reset(sock)


def _reset(sock: socket.socket) -> None:
    """Close with RST rather than FIN, as a dead server's host would answer."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
