"""SSH host keys from the instance's console output: the channel AWS vouches for.

cloud-init prints the host keys to the serial console at first boot (its
`write-ssh-key-fingerprints` script, through `logger -t ec2`), between
`-----BEGIN SSH HOST KEY FINGERPRINTS-----` / `-----END ...-----` and
`-----BEGIN SSH HOST KEY KEYS-----` / `-----END ...-----` lines. The console is
read through the authenticated EC2 API (GetConsoleOutput), so what it shows
came from the instance itself, not from whoever answers on its IP. gpucost
reads those keys before its first connection and pins them; it never trusts a
key it is merely offered. The parsing is in `gpucost.remote.console`.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable, Iterable
from typing import Final

from botocore.exceptions import ClientError

from gpucost.remote.console import PublishedKeys, parse_console
from gpucost.remote.providers.aws_errors import CloudError, error_code
from gpucost.remote.providers.aws_tags import Client
from gpucost.remote.providers.base import Progress, ProgressEvent

_BASE64_RE: Final = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


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
