"""A real OpenSSH server on 127.0.0.1 for tests: its own host key, one
authorized key, password login allowed in its config so that tests can prove
the client never tries one."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from gpucost.inventory import Host, VmName

SSHD = Path("/usr/sbin/sshd")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def keygen(path: Path, kind: str = "ed25519") -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "test", "-f", str(path)], check=True
    )
    return path


@dataclass
class Sshd:
    """One sshd; `restart(new_host_key=True)` plays a VM recreated behind the same IP."""

    workdir: Path
    user: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def client_key(self) -> Path:
        return self.workdir / "client_key"

    @property
    def host_key(self) -> Path:
        return self.workdir / "host_key"

    def prepare(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.client_key.exists():
            keygen(self.client_key)
        if not self.host_key.exists():
            keygen(self.host_key)
        authorized = self.workdir / "authorized_keys"
        shutil.copy(self.client_key.with_suffix(".pub"), authorized)
        authorized.chmod(0o600)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        (self.workdir / "sshd_config").write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {self.host_key}\n"
            f"AuthorizedKeysFile {authorized}\n"
            f"PidFile {self.workdir / 'sshd.pid'}\n"
            "PermitRootLogin prohibit-password\n"
            "PasswordAuthentication yes\n"
            "KbdInteractiveAuthentication no\n"
            "StrictModes no\n"
            "UsePAM no\n"
            "Subsystem sftp internal-sftp\n"
            "AllowTcpForwarding yes\n"
            "LogLevel ERROR\n"
        )

    def start(self) -> None:
        self.prepare()
        self.process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(self.workdir / "sshd_config")],
            stdout=subprocess.DEVNULL,
            stderr=(self.workdir / "sshd.log").open("ab"),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError((self.workdir / "sshd.log").read_text()) from None
                time.sleep(0.05)
        raise RuntimeError("sshd did not listen within 10 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def restart(self, *, new_host_key: bool = False) -> None:
        self.stop()
        if new_host_key:
            self.host_key.unlink()
            self.host_key.with_suffix(".pub").unlink()
        self.start()

    def host_fingerprint(self) -> str:
        out = subprocess.run(
            ["ssh-keygen", "-l", "-E", "sha256", "-f", str(self.host_key.with_suffix(".pub"))],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return out.split()[1]


def host_for(sshd: Sshd, name: VmName = "vm3") -> Host:
    """A Host of the inventory that points at this sshd (several VMs may share it),
    with its host key's fingerprint as a provider publishes it."""
    return Host(
        name=name,
        role="processor",
        provider="test",
        state="running",
        public_ip="127.0.0.1",
        private_ip="127.0.0.1",
        ssh_user=sshd.user,
        ssh_port=sshd.port,
        ssh_host_key_fingerprints=(sshd.host_fingerprint(),),
    )
