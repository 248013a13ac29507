"""A local port forwarded through an SSH connection (`ssh -L`), for tunnels to
services that the firewall keeps off the internet (the API for `report`)."""

from __future__ import annotations

import select
import socket
import socketserver
import threading
from dataclasses import dataclass

import paramiko


def _pump(client: socket.socket, channel: paramiko.Channel) -> None:
    try:
        while True:
            readable, _, _ = select.select([client, channel], [], [], 1.0)
            if client in readable:
                data = client.recv(65536)
                if not data:
                    return
                channel.sendall(data)
            if channel in readable:
                data = channel.recv(65536)
                if not data:
                    return
                client.sendall(data)
    finally:
        channel.close()
        client.close()


@dataclass
class LocalForward:
    server: socketserver.ThreadingTCPServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @classmethod
    def start(
        cls, transport: paramiko.Transport, remote_host: str, remote_port: int, local_port: int = 0
    ) -> LocalForward:
        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                peer = self.request.getpeername()
                try:
                    channel = transport.open_channel(
                        "direct-tcpip", (remote_host, remote_port), peer
                    )
                except paramiko.SSHException:
                    self.request.close()
                    return
                _pump(self.request, channel)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        # Loopback only: the tunnel must not open the service to this machine's network.
        server = Server(("127.0.0.1", local_port), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        return cls(server, thread)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> LocalForward:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
