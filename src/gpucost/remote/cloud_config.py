"""The first-boot configuration every gpucost VM gets, on AWS and locally.

AWS hands it to cloud-init as the instance's user data and its key pair as
metadata; the local provider writes the same two into a NoCloud seed on each
host, so its hosts run exactly what an EC2 instance runs at boot: cloud-init
makes the `ubuntu` login with the deployment's key, generates the host keys and
prints them to the console, and installs the admin-access unit.
"""

from __future__ import annotations

import json
from typing import Final

from gpucost.paths import scripts_dir

ADMIN_ACCESS_UNIT: Final = "gpucost-admin-access.service"
ADMIN_ACCESS_SCRIPT: Final = "/usr/local/sbin/gpucost-admin-access"
KEY_PRINTER: Final = "/usr/lib/cloud-init/write-ssh-key-fingerprints"


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "".join(pad + line if line.strip() else line for line in text.splitlines(True))


def user_data() -> str:
    """The cloud-config every VM boots with. It holds no secret: anything on the
    VM, containers included, can read user data through IMDS."""
    script = (scripts_dir() / "roles" / "admin-access.sh").read_text(encoding="utf-8")
    unit = (
        "[Unit]\n"
        "Description=gpucost: admit the admin address named by the instance's tag\n"
        "After=network-online.target ufw.service\n"
        "Wants=network-online.target\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"ExecStart={ADMIN_ACCESS_SCRIPT}\n\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )
    return (
        "#cloud-config\n"
        "write_files:\n"
        f"  - path: {ADMIN_ACCESS_SCRIPT}\n"
        '    permissions: "0755"\n'
        "    content: |\n"
        f"{_indent(script, 6)}"
        f"  - path: /etc/systemd/system/{ADMIN_ACCESS_UNIT}\n"
        '    permissions: "0644"\n'
        "    content: |\n"
        f"{_indent(unit, 6)}"
        "runcmd:\n"
        "  - [systemctl, daemon-reload]\n"
        f"  - [systemctl, enable, {ADMIN_ACCESS_UNIT}]\n"
        "# From the second boot on, print the host keys again: cloud-init prints\n"
        "# them at the first boot only, and gpucost reads them from the console.\n"
        "bootcmd:\n"
        f"  - [sh, -c, 'ls /etc/ssh/ssh_host_*key.pub >/dev/null 2>&1 "
        f'&& {KEY_PRINTER} "" "" || true\']\n'
    )


def nocloud_meta_data(instance_id: str, hostname: str, public_key: str) -> str:
    """NoCloud's `meta-data`: what EC2's metadata service tells cloud-init (the
    instance id, the host name, the key pair's public key). JSON is YAML."""
    return json.dumps(
        {"instance-id": instance_id, "local-hostname": hostname, "public-keys": [public_key]},
        indent=2,
    )
