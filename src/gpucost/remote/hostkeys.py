"""Pinned SSH host keys: the deployment state remembers each VM's key.

A VM's key is accepted only when its provider vouches for it: AWS through the
instance's console output (cloud-init prints the keys there), the local
provider by reading the container's key files. A key merely offered on first
use is refused. From then on only the pinned key is accepted; a different one
stops everything, because the usual innocent cause (a recycled IP or a
recreated VM) and the dangerous one (someone in the path) look the same.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import paramiko

from gpucost.errors import GpucostError
from gpucost.remote.console import fingerprint
from gpucost.state import HOST_KEYS_FILE, StateDir

KNOWN_HOSTS_FILE = "known_hosts"


class HostKeyMismatch(GpucostError):
    """The host offered another key than the one pinned in the state."""


class HostKeyRejected(GpucostError):
    """The host's key matches none of the fingerprints its provider published."""


@dataclass(frozen=True)
class PinnedKey:
    key_type: str
    key_b64: str
    address: str
    instance_id: str | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key_b64)

    def paramiko_key(self) -> paramiko.PKey:
        return paramiko.PKey.from_type_string(self.key_type, base64.b64decode(self.key_b64))

    def alias(self, vm: str) -> str:
        """The name of the host in known_hosts: its identity, not its address, so a
        stopped and started instance with a new IP is still recognised."""
        return self.instance_id or f"gpucost-{vm}"

    def applies_to(self, instance_id: str | None) -> bool:
        # A new instance id means a new machine with new keys (down then up):
        # its pin is stale rather than contradicted.
        return self.instance_id is None or instance_id is None or self.instance_id == instance_id


def host_key_name(address: str, port: int) -> str:
    """How OpenSSH and paramiko name a host in known_hosts."""
    return address if port == 22 else f"[{address}]:{port}"


class HostKeyStore:
    """The pins of one deployment, in its private state directory."""

    def __init__(self, state: StateDir) -> None:
        self.state = state

    def _load(self) -> dict[str, Any]:
        data = self.state.read_json(HOST_KEYS_FILE)
        return data if isinstance(data, dict) else {}

    def get(self, vm: str) -> PinnedKey | None:
        entry = self._load().get(vm)
        return PinnedKey(**entry) if isinstance(entry, dict) else None

    def pin(self, vm: str, key: PinnedKey) -> None:
        data = self._load()
        data[vm] = asdict(key)
        self.state.write_json(HOST_KEYS_FILE, data)

    def forget(self, vm: str) -> None:
        data = self._load()
        if data.pop(vm, None) is not None:
            self.state.write_json(HOST_KEYS_FILE, data)

    def write_known_hosts(self, entries: Iterable[tuple[str, int]]) -> Path:
        """A known_hosts file for the system `ssh` (`gpucost ssh`): one line per
        VM that has a pin, under its alias (`ssh -o HostKeyAlias=...`)."""
        pins = self._load()
        lines = []
        for vm, _port in entries:
            entry = pins.get(vm)
            if isinstance(entry, dict):
                key = PinnedKey(**entry)
                lines.append(f"{key.alias(vm)} {key.key_type} {key.key_b64}\n")
        return self.state.write_text(KNOWN_HOSTS_FILE, "".join(lines))


class PinningPolicy(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
    """Called by paramiko for a host with no pinned key: accept and pin the key
    only if the provider vouches for it."""

    def __init__(
        self,
        vm: str,
        address: str,
        store: HostKeyStore,
        *,
        instance_id: str | None = None,
        expected: Iterable[str] = (),
        notice: Callable[[str], None] = print,
    ) -> None:
        self.vm = vm
        self.address = address
        self.store = store
        self.instance_id = instance_id
        self.expected = frozenset(expected)
        self.notice = notice

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        offered = PinnedKey(key.get_name(), key.get_base64(), self.address, self.instance_id)
        if not self.expected:
            raise HostKeyRejected(
                f"{self.vm} ({self.address}) offered host key {offered.fingerprint}, and its "
                "provider has published none to check it against",
                hint="gpucost never trusts a key on first use; run `gpucost up` to read "
                "the keys from the provider",
            )
        if offered.fingerprint not in self.expected:
            raise HostKeyRejected(
                f"{self.vm} ({self.address}) offered host key {offered.fingerprint}, "
                "which its provider did not publish",
                hint="someone may be between you and the VM; do not connect, "
                "check the instance's console output",
            )
        self.store.pin(self.vm, offered)
        self.notice(
            f"{self.vm} ({self.address}): host key {offered.fingerprint} matches the "
            "provider's record; pinned"
        )


def pin_published(
    store: HostKeyStore, vm: str, address: str, instance_id: str | None, keys: Iterable[str]
) -> PinnedKey | None:
    """Pin one of the keys the provider published ("type base64"), before any
    connection: ed25519 first, as OpenSSH prefers it."""
    order = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
             "ecdsa-sha2-nistp521", "ssh-rsa")  # fmt: skip
    parsed = [tuple(k.split()[:2]) for k in keys if len(k.split()) >= 2]
    usable = sorted((p for p in parsed if p[0] in order), key=lambda p: order.index(p[0]))
    if not usable:
        return None
    kind, blob = usable[0]
    pinned = PinnedKey(kind, blob, address, instance_id)
    store.pin(vm, pinned)
    return pinned


def check_pinned(vm: str, address: str, pinned: PinnedKey, offered: paramiko.PKey) -> None:
    """Raise the mismatch error for a key paramiko found different from the pin."""
    raise HostKeyMismatch(
        f"host key of {vm} ({address}) changed: pinned {pinned.fingerprint}, "
        f"offered {fingerprint(offered.get_base64())}",
        hint="if the VM was recreated or its IP reused by another machine, "
        f"`gpucost ssh --forget-host-key {vm}` drops the pin; otherwise do not connect",
    )
