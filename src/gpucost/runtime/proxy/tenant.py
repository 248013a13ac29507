"""Who sent a request: a configured header, or the API key turned into a name or a hash.

The key itself never leaves this module: an event carries the name the operator mapped
the key to, or `key-` and the first 16 hex digits of the key's SHA-256, which is stable
(one key, one tenant, across restarts and proxies) and does not give the key back.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from gpucost.errors import ConfigError

TENANT_PATTERN: Final = re.compile(r"^[A-Za-z0-9._:@/-]{1,64}$")
"""What an event's `tenant` may hold (events.TenantName)."""


def key_hash(key: str) -> str:
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def api_key(headers: Mapping[str, str]) -> str | None:
    """The request's API key: `Authorization: Bearer KEY`, else `api-key` / `x-api-key`."""
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    for name in ("api-key", "x-api-key"):
        if value := headers.get(name, "").strip():
            return value
    return None


@dataclass(frozen=True, slots=True)
class TenantResolver:
    header: str | None = None
    """A header that names the tenant (set by a gateway in front); wins over the key."""
    names: Mapping[str, str] = field(default_factory=dict)
    """API key -> tenant name, from the keys file."""

    def tenant(self, headers: Mapping[str, str]) -> str | None:
        if self.header is not None:
            named = headers.get(self.header.lower(), "").strip()
            if TENANT_PATTERN.match(named):
                return named
        key = api_key(headers)
        if key is None:
            return None
        return self.names.get(key) or key_hash(key)


def load_key_names(path: Path) -> dict[str, str]:
    """The keys file: a JSON object of API key -> tenant name. It holds secrets, so it must
    be readable by its owner alone (mode 0600 or stricter)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"cannot read the tenant keys file {path}: {error.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"the tenant keys file {path} is readable by others (mode {stat.S_IMODE(mode):o})",
            hint=f"chmod 600 {path}",
        )
    try:
        names = json.loads(text)
    except ValueError:
        raise ConfigError(f"the tenant keys file {path} is not JSON") from None
    if not isinstance(names, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) and TENANT_PATTERN.match(v)
        for k, v in names.items()
    ):
        # Never echo the content: its keys are secrets.
        raise ConfigError(
            f"the tenant keys file {path} must map each API key to a name of 1-64 "
            "characters from A-Z a-z 0-9 . _ : @ / -"
        )
    return names
