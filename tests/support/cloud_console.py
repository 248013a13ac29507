"""Console output as cloud-init prints it on EC2, for moto's GetConsoleOutput
(moto answers every instance with one fixed old Xen log, with no host keys)."""

from __future__ import annotations

from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gpucost.remote.hostkeys import fingerprint

SYSLOG = "<14>Nov 29 13:37:00 ec2: "
"""What `logger --stderr -t ec2` puts before each line on Ubuntu's console."""


def new_host_key() -> str:
    """A fresh ed25519 public key, "ssh-ed25519 AAAA..."."""
    public = Ed25519PrivateKey.generate().public_key()
    return public.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


def cloud_init_console(keys: Iterable[str], prefix: str = SYSLOG) -> str:
    """A boot log with cloud-init's two blocks (its write-ssh-key-fingerprints)."""
    keys = list(keys)
    lines = ["[    0.000000] Linux version 6.8.0-1018-aws", "Cloud-init v. 24.4 finished"]
    block = ["", "#" * 61, "-----BEGIN SSH HOST KEY FINGERPRINTS-----"]
    for key in keys:
        kind, blob = key.split()[:2]
        block.append(f"256 {fingerprint(blob)} root@ip-172-31-0-10 ({kind.upper()})")
    block += ["-----END SSH HOST KEY FINGERPRINTS-----", "#" * 61]
    block.append("-----BEGIN SSH HOST KEY KEYS-----")
    block += [f"{key} root@ip-172-31-0-10" for key in keys]
    block.append("-----END SSH HOST KEY KEYS-----")
    lines += [prefix + line for line in block]
    lines.append("[   30.1] cloud-init[900]: Cloud-init v. 24.4 finished at Sat, 29 Nov 2026")
    return "\r\n".join(lines) + "\r\n"
