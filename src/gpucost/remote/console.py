"""SSH host keys as cloud-init prints them to a machine's console.

cloud-init's `write-ssh-key-fingerprints` (through `logger -t ec2`) writes two
blocks at first boot: `-----BEGIN SSH HOST KEY FINGERPRINTS-----` ...
`-----END SSH HOST KEY FINGERPRINTS-----` and `-----BEGIN SSH HOST KEY KEYS-----`
... `-----END SSH HOST KEY KEYS-----`. AWS shows them through GetConsoleOutput;
the local provider's hosts print the same blocks to their console (`docker
logs`). Both providers read them here, with no cloud SDK involved.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Final


def fingerprint(key_b64: str) -> str:
    """OpenSSH's SHA256 fingerprint (`ssh-keygen -lf`) of a base64 public key blob."""
    digest = hashlib.sha256(base64.b64decode(key_b64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


FINGERPRINTS: Final = "SSH HOST KEY FINGERPRINTS"
KEYS: Final = "SSH HOST KEY KEYS"
_KEY_RE: Final = re.compile(
    r"\b(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)) ([A-Za-z0-9+/]+={0,3})(?:\s|$)"
)
_FINGERPRINT_RE: Final = re.compile(r"\bSHA256:([A-Za-z0-9+/]{43})\b")


@dataclass(frozen=True)
class PublishedKeys:
    """The host keys one instance printed: `(type, base64)` pairs and their
    SHA256 fingerprints."""

    keys: tuple[tuple[str, str], ...]
    fingerprints: tuple[str, ...]

    def as_lines(self) -> tuple[str, ...]:
        return tuple(f"{kind} {blob}" for kind, blob in self.keys)


def _last_block(lines: list[str], title: str) -> list[str] | None:
    """The lines of the last complete BEGIN/END block: the latest boot's."""
    begin, end = f"-----BEGIN {title}-----", f"-----END {title}-----"
    found: list[str] | None = None
    current: list[str] | None = None
    for line in lines:
        if begin in line:
            current = []
        elif end in line and current is not None:
            found, current = current, None
        elif current is not None:
            current.append(line)
    return found


def parse_console(text: str) -> PublishedKeys | None:
    """The host keys in a console log, or None while cloud-init has not printed
    them. Lines may carry a prefix (`ec2: `, a syslog header); keys that the
    fingerprint block does not list are dropped (a line mangled on the wire)."""
    lines = text.replace("\r", "").splitlines()
    fp_block = _last_block(lines, FINGERPRINTS)
    key_block = _last_block(lines, KEYS)
    if fp_block is None and key_block is None:
        return None
    listed = {
        f"SHA256:{m.group(1)}" for line in fp_block or [] for m in _FINGERPRINT_RE.finditer(line)
    }
    keys: list[tuple[str, str]] = []
    for line in key_block or []:
        match = _KEY_RE.search(line)
        if match is None:
            continue
        kind, blob = match.group(1), match.group(2)
        try:
            printed = fingerprint(blob)
        except (binascii.Error, ValueError):
            continue
        if fp_block is None or printed in listed:
            keys.append((kind, blob))
    fingerprints = sorted(listed | {fingerprint(blob) for _, blob in keys})
    if not fingerprints:
        return None
    return PublishedKeys(tuple(keys), tuple(fingerprints))
