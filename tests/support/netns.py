"""Run a command in its own network namespace, where one TCP address leads to a proxy outside.

Why: a Kafka client connects to the address the broker *advertises* (127.0.0.1:9092
here), not the one it was given, so a TcpProxy on another port is bypassed after the
first metadata request. In a fresh network namespace 127.0.0.1:9092 is free: a
forwarder there carries each connection over a Unix socket (a path, which every
namespace sees) to a forwarder outside, which connects to the TcpProxy in front of the
real broker. Cutting the proxy then cuts the command, and only it, from the broker.

    command-in-ns -> 127.0.0.1:9092 (ns) -> unix socket -> UnixToTcp -> TcpProxy -> broker

Run as `python -m support.netns --listen 9092 --unix PATH -- cmd...` under
`unshare --net`; `netns_popen()` does that. Needs root (or CAP_SYS_ADMIN).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType, TracebackType

TESTS_DIR = Path(__file__).resolve().parent.parent


def netns_available() -> str | None:
    """None if `unshare --net` works here, else why not."""
    try:
        done = subprocess.run(
            ["unshare", "--net", "true"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"unshare: {err}"
    return None if done.returncode == 0 else f"unshare --net: {done.stderr.strip()}"


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


def _splice(a: socket.socket, b: socket.socket) -> None:
    """Pump both ways; when either side ends, end both (the far end's reset, passed on)."""
    done = threading.Event()

    def pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            if not done.is_set():
                done.set()
                _reset(a)
                _reset(b)

    for src, dst in ((a, b), (b, a)):
        threading.Thread(target=pump, args=(src, dst), daemon=True).start()


class UnixToTcp:
    """Outside the namespace: accepts on a Unix socket, connects each to `target`."""

    def __init__(self, path: Path, target: tuple[str, int]) -> None:
        self.path = path
        self.target = target
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="unix-to-tcp", daemon=True)
        self._thread.start()

    def __enter__(self) -> UnixToTcp:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                inner, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            inner.settimeout(None)
            try:
                outer = socket.create_connection(self.target, timeout=2)
            except OSError:
                _reset(inner)
                continue
            outer.settimeout(None)
            _splice(inner, outer)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(5)
        self._listener.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def netns_popen(
    unix_path: Path, listen_port: int, command: list[str], **popen: object
) -> subprocess.Popen[str]:
    """Start `command` in a new network namespace whose 127.0.0.1:`listen_port` leads to
    the UnixToTcp listening on `unix_path`. SIGTERM to the returned process reaches it."""
    env = dict(popen.pop("env", None) or os.environ)  # type: ignore[call-overload]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")]))
    argv = [
        "unshare",
        "--net",
        "--",
        sys.executable,
        "-m",
        "support.netns",
        "--listen",
        str(listen_port),
        "--unix",
        str(unix_path),
        "--",
        *command,
    ]
    return subprocess.Popen(argv, env=env, text=True, **popen)  # type: ignore[call-overload]


def _inside(listen_port: int, unix_path: str, command: list[str]) -> int:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    listener = socket.create_server(("127.0.0.1", listen_port))

    def accept() -> None:
        while True:
            client, _ = listener.accept()
            outer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                outer.connect(unix_path)
            except OSError:
                _reset(client)
                outer.close()
                continue
            _splice(client, outer)

    threading.Thread(target=accept, name="tcp-to-unix", daemon=True).start()
    child = subprocess.Popen(command)

    def forward(signum: int, _frame: FrameType | None) -> None:
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return child.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--unix", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    sys.exit(_inside(args.listen, args.unix, command))
