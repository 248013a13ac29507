"""Install steps as data: what each pushes, runs, and checks.

A step never runs anything itself. `role_steps.py` builds the list for a deployment,
`runner.py` executes it over a `Connection`, and tests assert on the values.

A step is done when its check passes *and* the host holds a marker with the
step's digest: the hash of its script, arguments, environment and uploads.
Changing any input (a new partition count, a new wheel) therefore reruns the
step, and an unchanged one is skipped on the next `up`.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from gpucost.inventory import Role
from gpucost.paths import scripts_dir

if TYPE_CHECKING:
    from hashlib import _Hash as Hash

Wave = Literal["prepare", "data", "processor", "producers"]
WAVES: Final[tuple[Wave, ...]] = ("prepare", "data", "processor", "producers")
"""Order across hosts: a step waits until every host finished its earlier
waves (Kafka and MongoDB before the processor, the processor before producers);
within a wave, hosts run side by side."""

SCRIPTS_DIR: Final = scripts_dir() / "roles"
REMOTE_WORKDIR: Final = ".gpucost"
"""The SSH user's upload directory (0700), relative to its home."""
MARKERS: Final = "/var/lib/gpucost/done"
SUPPORT_FILES: Final = ("lib.sh", "mongo-users.py")
"""Pushed next to every script: the helpers the scripts share."""


@dataclass(frozen=True)
class Upload:
    """A file pushed to the host's upload directory before the script runs."""

    name: str
    """Path under the upload directory (may contain one `dir/`)."""
    local: Path | None = None
    content: bytes | None = None
    mode: int = 0o644
    secret: bool = False
    """Generated content with passwords: pushed 0600, never logged."""

    def __post_init__(self) -> None:
        if (self.local is None) == (self.content is None):
            raise ValueError(f"upload {self.name}: give exactly one of local or content")
        if self.secret and self.mode & 0o077:
            raise ValueError(f"upload {self.name}: a secret must not be readable by others")

    def digest(self) -> str:
        return self._hashed(hashlib.sha256(f"{self.name}:{self.mode:o}:".encode()))

    def sha256(self) -> str:
        """SHA-256 of the bytes pushed (what `sha256sum` prints on the host)."""
        return self._hashed(hashlib.sha256())

    def _hashed(self, hasher: Hash) -> str:
        if self.content is not None:
            hasher.update(self.content)
            return hasher.hexdigest()
        assert self.local is not None
        return _hashed_file(hasher, self.local)


def _hashed_file(hasher: Hash, path: Path) -> str:
    """The hex digest of `hasher` fed with the file, read in chunks (tarballs are large)."""
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()


@dataclass(frozen=True)
class Step:
    name: str
    roles: tuple[Role, ...]
    wave: Wave
    script: str
    """File name in scripts/roles/."""
    summary: str = ""
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    """Settings for the script; never secrets (they travel as 0600 uploads)."""
    uploads: tuple[Upload, ...] = ()
    check: str = "true"
    """Shell, run as root: exit 0 when the step's effect is in place."""
    timeout: float = 900

    @property
    def script_path(self) -> Path:
        return SCRIPTS_DIR / self.script

    def digest(self, scripts_dir: Path = SCRIPTS_DIR) -> str:
        hasher = hashlib.sha256()
        for name in (self.script, *SUPPORT_FILES):
            hasher.update((scripts_dir / name).read_bytes())
        for part in (*self.args, *(f"{k}={v}" for k, v in self.env), self.check):
            hasher.update(part.encode() + b"\0")
        for upload in self.uploads:
            hasher.update(upload.digest().encode())
        return hasher.hexdigest()[:32]

    def pushed(self, scripts_dir: Path = SCRIPTS_DIR) -> tuple[tuple[str, str], ...]:
        """(path under the upload directory, SHA-256) of each file pushed for this
        step: its script, the shared helpers and its uploads, secrets left out (their
        digest has no business in a command line)."""
        scripts = tuple(
            (f"scripts/{name}", _hashed_file(hashlib.sha256(), scripts_dir / name))
            for name in (self.script, *SUPPORT_FILES)
        )
        return scripts + tuple((u.name, u.sha256()) for u in self.uploads if not u.secret)

    def verify_command(self, workdir: str, scripts_dir: Path = SCRIPTS_DIR) -> str:
        """Run on the host before the script: every pushed file has the digest of what
        this machine sent, or the step stops there, naming the file (a truncated push,
        a full disk, a file changed on the host). Prints only what differs."""
        listing = "".join(f"{digest}  {name}\n" for name, digest in self.pushed(scripts_dir))
        return (
            f"cd {shlex.quote(workdir)} && printf %s {shlex.quote(listing)}"
            " | sha256sum --quiet --strict -c - 2>&1"
        )

    def marker(self, markers: str = MARKERS) -> str:
        return f"{markers}/{self.name}"

    def done_command(self, digest: str, markers: str = MARKERS) -> str:
        """The full check: the step's own check and a marker of these very inputs."""
        marker = shlex.quote(self.marker(markers))
        return f'[ "$(cat {marker} 2>/dev/null)" = {shlex.quote(digest)} ] && {{ {self.check} ; }}'

    def run_command(
        self, workdir: str, digest: str, extra_env: dict[str, str], markers: str = MARKERS
    ) -> str:
        """The line run as root: the script with its settings, then the marker."""
        env = {"GPUCOST_WORKDIR": workdir, **dict(self.env), **extra_env}
        assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        script = shlex.quote(f"{workdir}/scripts/{self.script}")
        args = " ".join(shlex.quote(a) for a in self.args)
        marker = shlex.quote(self.marker(markers))
        record = f"install -d -m 0755 {shlex.quote(markers)} && echo {digest} > {marker}"
        return (
            f"cd {shlex.quote(workdir)} && env {assignments} bash {script} {args}".rstrip()
            + f" && {record}"
        )


@dataclass(frozen=True)
class HostSteps:
    """The steps of one host, in order."""

    vm: str
    role: Role
    steps: tuple[Step, ...]

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)
