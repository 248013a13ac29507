"""SSH to the deployment's hosts: key-only, host keys pinned, output logged.

`Connection` is the small interface the steps runner and the commands use;
`SshConnection` implements it with paramiko. Nothing else in gpucost imports
paramiko.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import os
import select
import shlex
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

import paramiko

from gpucost.errors import GpucostError
from gpucost.inventory import Host
from gpucost.remote.hostkeys import (
    HostKeyStore,
    PinningPolicy,
    check_pinned,
    host_key_name,
    pin_published,
)

if TYPE_CHECKING:
    from gpucost.remote.forward import LocalForward

TIMED_OUT = 124
"""The exit status `run` reports for a command it stopped (as timeout(1) does)."""


class SshUnavailable(GpucostError):
    """The host did not accept a connection within the retry window."""


class SshKeyRefused(GpucostError):
    """The managed key cannot log in: unusable here, or refused by the host.
    Waiting would not help, so this is never retried."""


def check_private_key(path: Path) -> None:
    """Fail at once, in one line, on a key paramiko could never use."""
    if not path.is_file():
        raise SshKeyRefused(
            f"private key {path} not found",
            hint="it sits next to the --ssh-public-key (.pub) the deployment was made with",
        )
    text = path.read_text(encoding="utf-8", errors="replace")
    if "ENCRYPTED" in text or _openssh_key_encrypted(text):
        raise SshKeyRefused(
            f"private key {path} is protected by a passphrase",
            hint="gpucost logs in unattended: use a key without one "
            "(`ssh-keygen -t ed25519 -N ''`) for the deployment",
        )


def _openssh_key_encrypted(text: str) -> bool:
    # An OpenSSH-format key names its cipher in the clear right after the magic.
    body = "".join(line for line in text.splitlines() if line and "-----" not in line)
    try:
        raw = base64.b64decode(body)
    except (binascii.Error, ValueError):
        return False
    magic = b"openssh-key-v1\0"
    if not raw.startswith(magic):
        return False
    length = int.from_bytes(raw[len(magic) : len(magic) + 4], "big")
    cipher = raw[len(magic) + 4 : len(magic) + 4 + length]
    return cipher != b"none"


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def tail(self, lines: int = 15) -> str:
        text = (self.stdout.rstrip() + "\n" + self.stderr.rstrip()).strip()
        return "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True)
class Target:
    """Where and how to reach one host."""

    vm: str
    address: str
    user: str
    key_path: Path
    port: int = 22
    instance_id: str | None = None
    host_key_fingerprints: tuple[str, ...] = ()
    host_keys: tuple[str, ...] = ()
    """Public host keys the provider published ("type base64"): pinned before
    the first connection."""

    @classmethod
    def of(cls, host: Host, key_path: Path) -> Target:
        address = host.public_ip or host.private_ip
        if not address:
            raise SshUnavailable(f"{host.name} has no IP address yet", hint="run `gpucost up`")
        return cls(
            vm=host.name,
            address=address,
            user=host.ssh_user,
            key_path=key_path,
            port=host.ssh_port,
            instance_id=host.instance_id,
            host_key_fingerprints=host.ssh_host_key_fingerprints,
            host_keys=host.ssh_host_keys,
        )


class Connection(Protocol):
    """What a step needs from a host; tests may substitute a fake."""

    @property
    def vm(self) -> str: ...

    def run(
        self, command: str, *, sudo: bool = False, timeout: float = 600, quiet: bool = False
    ) -> Result: ...

    def put_file(self, source: Path | bytes, remote: str, mode: int = 0o644) -> None: ...

    def get_file(self, remote: str, local: Path) -> None: ...

    def close(self) -> None: ...


def open_log(path: Path) -> IO[str]:
    """Append to a per-VM log that only the owner can read (commands' output
    may name hosts and users; secrets are masked but the file stays private)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "a", encoding="utf-8", buffering=1)


@dataclass
class SshConnection:
    target: Target
    client: paramiko.SSHClient
    log: IO[str] | None = None
    redact: Sequence[str] = field(default_factory=tuple)

    @property
    def vm(self) -> str:
        return self.target.vm

    @classmethod
    def connect(
        cls,
        target: Target,
        store: HostKeyStore,
        *,
        log: IO[str] | None = None,
        timeout: float = 10,
        retry_for: float = 180,
        notice: Callable[[str], None] = print,
    ) -> SshConnection:
        """Connect, retrying while the host boots; host-key and login-key
        problems never retry."""
        check_private_key(target.key_path)
        deadline = time.monotonic() + retry_for
        while True:
            try:
                client = _open_client(target, store, timeout, notice)
                return cls(target, client, log)
            except GpucostError:
                raise
            except paramiko.PasswordRequiredException as exc:
                raise SshKeyRefused(
                    f"private key {target.key_path} is protected by a passphrase",
                    hint="use a key without one for the deployment",
                ) from exc
            except paramiko.AuthenticationException as exc:
                # The host answered and refused the key: its keys were already
                # published (the end of cloud-init), so this is the wrong key.
                raise SshKeyRefused(
                    f"{target.vm} ({target.user}@{target.address}) refused the key "
                    f"{target.key_path}",
                    hint="pass the --ssh-public-key the deployment was made with",
                ) from exc
            except paramiko.BadHostKeyException as exc:
                pinned = store.get(target.vm)
                assert pinned is not None  # only a loaded pin can be contradicted
                check_pinned(target.vm, target.address, pinned, exc.key)
            except (OSError, paramiko.SSHException, EOFError) as exc:
                # Includes refused auth: cloud-init may not have installed the key yet.
                if time.monotonic() >= deadline:
                    raise SshUnavailable(
                        f"cannot SSH to {target.vm} at {target.user}@{target.address}:"
                        f"{target.port}: {exc or type(exc).__name__}",
                        hint=f"is the VM running, port {target.port} open to you, "
                        f"and {target.key_path} the key it was made with?",
                    ) from exc
                time.sleep(2)

    def _log(self, text: str) -> None:
        if self.log is not None:
            self.log.write(mask(text, self.redact))

    def run(
        self, command: str, *, sudo: bool = False, timeout: float = 600, quiet: bool = False
    ) -> Result:
        """Run through bash; `sudo -n` so a password prompt fails at once, not hangs.
        `quiet` keeps the output (not the command) out of the log, for reads of secrets."""
        # The host's own timeout(1) ends the command (and, 10 s later, kills it)
        # when this side gives up: closing the channel alone leaves it running,
        # holding whatever lock it took (dpkg's) when `up` is run again.
        limited = f"timeout -k 10 {max(1, math.ceil(timeout))} bash -c {shlex.quote(command)}"
        line = _as_root(limited, self.target.user) if sudo else limited
        self._log(f"$ {command}\n")
        channel = self.client.get_transport().open_session()
        channel.exec_command(line)
        channel.shutdown_write()
        out, err = io.StringIO(), io.StringIO()
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                channel.close()
                self._log(f"[timed out after {timeout:.0f}s]\n")
                return Result(TIMED_OUT, out.getvalue(), err.getvalue() + "\ntimed out")
            select.select([channel], [], [], 0.5)
            got = False
            while channel.recv_ready():
                chunk = channel.recv(65536).decode("utf-8", "replace")
                out.write(chunk)
                got = True
                if not quiet:
                    self._log(chunk)
            while channel.recv_stderr_ready():
                chunk = channel.recv_stderr(65536).decode("utf-8", "replace")
                err.write(chunk)
                got = True
                if not quiet:
                    self._log(chunk)
            if not got and channel.exit_status_ready():
                break
        rc = channel.recv_exit_status()
        channel.close()
        self._log(f"[exit {rc}]\n")
        return Result(rc, out.getvalue(), err.getvalue())

    def put_file(self, source: Path | bytes, remote: str, mode: int = 0o644) -> None:
        """Upload over SFTP; the mode is set on a temporary name before the
        rename, so a secret is never readable by others, not even briefly."""
        tmp = f"{remote}.gpucost-tmp"
        with self.client.open_sftp() as sftp:
            with sftp.open(tmp, "wb") as handle:
                sftp.chmod(tmp, mode)
                handle.set_pipelined(True)
                if isinstance(source, bytes):
                    handle.write(source)
                else:
                    with source.open("rb") as local:
                        while chunk := local.read(1 << 20):
                            handle.write(chunk)
            sftp.posix_rename(tmp, remote)
        size = len(source) if isinstance(source, bytes) else source.stat().st_size
        self._log(f"[uploaded {remote} ({size} bytes, mode {mode:o})]\n")

    def get_file(self, remote: str, local: Path) -> None:
        with self.client.open_sftp() as sftp:
            sftp.get(remote, str(local))

    def forward_local_port(
        self, remote_host: str, remote_port: int, local_port: int = 0
    ) -> LocalForward:
        """Forward 127.0.0.1:local_port here to remote_host:remote_port as seen
        from the host; returns the running forward (`.port`, `.close()`)."""
        from gpucost.remote.forward import LocalForward

        transport = self.client.get_transport()
        assert transport is not None
        return LocalForward.start(transport, remote_host, remote_port, local_port)

    def close(self) -> None:
        self.client.close()


def mask(text: str, secrets: Sequence[str]) -> str:
    """The text with every secret replaced by ****: for logs and error messages."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "****")
    return text


def _as_root(command: str, user: str) -> str:
    if user == "root":
        return command
    return "sudo -n -- " + command


def _open_client(
    target: Target, store: HostKeyStore, timeout: float, notice: Callable[[str], None]
) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    pinned = store.get(target.vm)
    if (pinned is None or not pinned.applies_to(target.instance_id)) and target.host_keys:
        pinned = pin_published(
            store, target.vm, target.address, target.instance_id, target.host_keys
        )
        if pinned is not None:
            notice(
                f"{target.vm} ({target.address}): host key {pinned.fingerprint} "
                "published by the provider; pinned"
            )
    if pinned is not None and pinned.applies_to(target.instance_id):
        # A known key makes paramiko ask for that key type and refuse any other key.
        client.get_host_keys().add(
            host_key_name(target.address, target.port), pinned.key_type, pinned.paramiko_key()
        )
    client.set_missing_host_key_policy(
        PinningPolicy(
            target.vm,
            target.address,
            store,
            instance_id=target.instance_id,
            expected=target.host_key_fingerprints,
            notice=notice,
        )
    )
    try:
        client.connect(
            target.address,
            port=target.port,
            username=target.user,
            key_filename=str(target.key_path),
            # Only the managed key: an agent or ~/.ssh keys could log in as
            # someone else, and a password must never be tried.
            look_for_keys=False,
            allow_agent=False,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
        )
    except BaseException:
        client.close()
        raise
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(30)
    return client


def probe_port(address: str, port: int, timeout: float = 3) -> bool:
    """Whether a TCP connection to address:port succeeds from this machine."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def auth_methods(address: str, port: int, user: str, timeout: float = 10) -> list[str]:
    """The login methods the server offers `user`, learnt with the "none"
    method: no password and no key is sent, so this is safe against any host."""
    with socket.create_connection((address, port), timeout=timeout) as sock:
        transport = paramiko.Transport(sock)
        try:
            transport.start_client(timeout=timeout)
            try:
                transport.auth_none(user)
            except paramiko.BadAuthenticationType as exc:
                return list(exc.allowed_types)
            return ["none"]
        finally:
            transport.close()
