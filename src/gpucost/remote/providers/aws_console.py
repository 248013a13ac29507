"""SSH host keys from the instance's console output: the channel AWS vouches for.

cloud-init prints the host keys to the serial console at first boot (its
`write-ssh-key-fingerprints` script, through `logger -t ec2`), between
`-----BEGIN SSH HOST KEY FINGERPRINTS-----` / `-----END ...-----` and
`-----BEGIN SSH HOST KEY KEYS-----` / `-----END ...-----` lines. The console is
read through the authenticated EC2 API (GetConsoleOutput), so what it shows
came from the instance itself, not from whoever answers on its IP. gpucost
reads those keys before its first connection and pins them; it never trusts a
key it is merely offered.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from botocore.exceptions import ClientError

from gpucost.remote.hostkeys import fingerprint
from gpucost.remote.providers.aws_errors import CloudError, error_code
from gpucost.remote.providers.aws_tags import Client
from gpucost.remote.providers.base import Progress, ProgressEvent

FINGERPRINTS: Final = "SSH HOST KEY FINGERPRINTS"
KEYS: Final = "SSH HOST KEY KEYS"
_KEY_RE: Final = re.compile(
    r"\b(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)) ([A-Za-z0-9+/]+={0,3})(?:\s|$)"
)
_BASE64_RE: Final = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
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


def console_text(ec2: Client, instance_id: str) -> str:
    """The instance's console output, decoded. `Latest` asks Nitro instances for
    the live buffer (else AWS may show it minutes late); other types refuse it."""
    try:
        answer = ec2.get_console_output(InstanceId=instance_id, Latest=True)
    except ClientError as exc:
        if error_code(exc) not in ("UnsupportedOperation", "InvalidParameterCombination"):
            raise
        answer = ec2.get_console_output(InstanceId=instance_id)
    output = str(answer.get("Output") or "")
    # The API sends base64; some endpoints (moto) hand back the decoded text,
    # which always has spaces, which base64 never has.
    compact = "".join(output.split())
    if compact and _BASE64_RE.fullmatch(compact):
        try:
            return base64.b64decode(compact, validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            pass
    return output


def published_keys(ec2: Client, instance_id: str) -> PublishedKeys | None:
    return parse_console(console_text(ec2, instance_id))


def wait_for_keys(
    ec2: Client,
    instance_ids: Iterable[str],
    progress: Progress,
    *,
    timeout: float = 900,
    delay: float = 10,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, PublishedKeys]:
    """Poll each instance's console until its keys appear; bounded by `timeout`."""
    pending = list(dict.fromkeys(instance_ids))
    found: dict[str, PublishedKeys] = {}
    deadline = clock() + timeout
    while pending:
        for instance_id in list(pending):
            keys = published_keys(ec2, instance_id)
            if keys is not None:
                found[instance_id] = keys
                pending.remove(instance_id)
                progress(
                    ProgressEvent(
                        "host keys", instance_id, "exists", "from the console output: "
                        + ", ".join(keys.fingerprints)
                    )
                )  # fmt: skip
        if not pending:
            break
        if clock() >= deadline:
            raise CloudError(
                f"no SSH host keys in the console output of {', '.join(pending)} "
                f"after {timeout:.0f}s",
                hint="the instance may still be booting: run `gpucost up` again; "
                "gpucost never connects to a host whose key AWS has not shown "
                "(`aws ec2 get-console-output --latest --instance-id ...`)",
            )
        progress(ProgressEvent("host keys", ", ".join(pending), "waiting", "in the console output"))
        sleep(delay)
    return found
