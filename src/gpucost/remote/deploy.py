"""The deploy over SSH, the second half of `up`: secrets, local artifacts, then each role's steps.

`lifecycle.deploy` calls `deploy(config, inventory, progress)` once the
provider made the hosts; so can any Python program.
"""

from __future__ import annotations

import email.parser
import hashlib
import re
import secrets as random_secrets
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Final

from gpucost.config.settings import GpucostConfig
from gpucost.errors import GpucostError
from gpucost.inventory import Inventory
from gpucost.paths import scripts_dir
from gpucost.remote.hostkeys import HostKeyStore
from gpucost.remote.providers.base import Progress, ProgressEvent, no_progress
from gpucost.remote.role_steps import Artifacts, Secrets, build_steps
from gpucost.remote.runner import StepResult, run_steps
from gpucost.remote.ssh import SshConnection, Target, open_log
from gpucost.state import SECRETS_FILE, StateDir

REPO_ROOT: Final = Path(__file__).resolve().parents[3]
KAFKA_FETCH: Final = scripts_dir() / "dev" / "kafka-fetch.sh"
KAFKA_MANIFEST: Final = "gpucost-kafka.sha256"
"""The pinned manifest's name inside the uploaded tarball (kafka.sh checks it)."""
KAFKA_FETCH_MISSING_TOOL: Final = 3
CLI_ONLY: Final = frozenset({"paramiko", "boto3", "matplotlib"})
"""gpucost's dependencies that only the CLI imports (SSH, AWS, PNG): `pip install
gpucost` brings them, the container image leaves them and theirs out."""
RUNTIME_REQUIREMENTS: Final = "requirements-runtime.txt"
"""Uploaded beside the wheels: what image.sh installs before gpucost itself."""


class ArtifactError(GpucostError):
    """Something this machine must build before the deploy could not be built."""


def load_secrets(state: StateDir, *, create: bool = True) -> Secrets:
    """The generated passwords: made once, kept only in the 0600 state file."""
    data = state.read_json(SECRETS_FILE)
    if isinstance(data, dict) and {"mongo_admin_password", "mongo_app_password"} <= set(data):
        return Secrets(data["mongo_admin_password"], data["mongo_app_password"])
    if not create:
        raise GpucostError(
            f"no generated passwords in {state.file(SECRETS_FILE)}", hint="run `gpucost up`"
        )
    # Hex only: the passwords end up in URIs and env files, where no character needs quoting.
    made = Secrets(random_secrets.token_hex(24), random_secrets.token_hex(24))
    state.write_json(SECRETS_FILE, vars(made))
    return made


def connect(
    config: GpucostConfig,
    inventory: Inventory,
    vm: str,
    *,
    notice: Progress = no_progress,
    retry_for: float = 300,
) -> SshConnection:
    """An SSH connection to one VM with the managed key, its pinned host key and
    its log file; generated passwords are masked in that log."""
    state = StateDir.of(config)
    state.ensure()
    target = Target.of(inventory.host(vm), config.private_key)
    log = open_log(state.log_file(vm))
    try:
        conn = SshConnection.connect(
            target,
            HostKeyStore(state),
            log=log,
            retry_for=retry_for,
            notice=lambda text: notice(ProgressEvent("host key", vm, "created", text)),
        )
    except BaseException:
        log.close()
        raise
    saved = state.read_json(SECRETS_FILE)
    if isinstance(saved, dict):
        conn.redact = tuple(str(v) for v in saved.values())
    return conn


def build_wheels(
    config: GpucostConfig, out: Path, progress: Progress = no_progress
) -> tuple[Path, ...]:
    """gpucost's wheel and its dependencies', for the image's Python and Linux."""
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    before = _digests(out)
    for old in out.glob("gpucost-*.whl"):
        old.unlink()
    progress(ProgressEvent("wheels", str(out), "waiting", f"for Python {config.images.python}"))
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    own = subprocess.run(
        [*pip, "wheel", "--no-deps", "-w", str(out), str(REPO_ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    if own.returncode != 0:
        raise ArtifactError(f"cannot build the gpucost wheel: {own.stderr.strip()[-500:]}")
    wheel = max(out.glob("gpucost-*.whl"), key=lambda p: p.stat().st_mtime)
    requirements = out / RUNTIME_REQUIREMENTS
    requirements.write_text("".join(f"{r}\n" for r in runtime_requirements(wheel)))
    deps = subprocess.run(
        [*pip, "download", "-d", str(out), "--only-binary=:all:",
         "--python-version", config.images.python, "--implementation", "cp",
         "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
         "--platform", "manylinux2014_x86_64", "--platform", "any", "-r", str(requirements)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if deps.returncode != 0:
        raise ArtifactError(
            f"cannot fetch the dependencies' wheels for Python {config.images.python}: "
            f"{deps.stderr.strip()[-500:]}",
            hint="this machine needs a package index (or a pip cache) once; "
            "set images.python to the base image's Python",
        )
    wheels = (*sorted(out.glob("*.whl")), requirements)
    # The wheels are reproducible: the same sources give the same bytes, and
    # only a change here is reported as one (and reruns the image steps).
    action = "exists" if _digests(out) == before else "created"
    progress(ProgressEvent("wheels", str(out), action, f"{len(wheels) - 1} wheels"))
    return wheels


def runtime_requirements(wheel: Path) -> list[str]:
    """The wheel's own requirements (no extras') less the CLI's: what the runtime needs."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(archive.read(name).decode())
    kept = []
    for requirement in metadata.get_all("Requires-Dist") or []:
        spec, _, marker = requirement.partition(";")
        if "extra" in marker:
            continue
        project = re.match(r"[A-Za-z0-9._-]+", spec.strip())
        if project is None or project.group(0).lower() in CLI_ONLY:
            continue
        kept.append(requirement.strip())
    return kept


def _digests(folder: Path) -> dict[str, str]:
    files = [*folder.glob("*.whl"), *folder.glob(RUNTIME_REQUIREMENTS)]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(files)}


def kafka_manifest(config: GpucostConfig) -> Path:
    """The committed manifest pinning the jar set of `[kafka] version` and `scala`."""
    return KAFKA_FETCH.parent / f"kafka-{config.kafka.version}-{config.kafka.scala}.sha256"


def kafka_pin(config: GpucostConfig) -> str | None:
    """SHA-256 of the pinned manifest the upload carries; None when no pinned jar set
    is uploaded (a `dist` of yours, or the VM downloads Apache's release)."""
    if config.kafka.dist is not None or config.kafka.source != "maven":
        return None
    manifest = kafka_manifest(config)
    if not manifest.is_file():
        kafka = config.kafka
        raise ArtifactError(
            f"no pinned manifest for Kafka {kafka.version} (Scala {kafka.scala}): {manifest}",
            hint=f"make one with `KAFKA_VERSION={kafka.version} SCALA_VERSION={kafka.scala} "
            "scripts/dev/kafka-fetch.sh --pin` (docs/aws.md, Artifacts), "
            'or set [kafka] source = "archive" or dist',
        )
    return hashlib.sha256(manifest.read_bytes()).hexdigest()


def kafka_dist(config: GpucostConfig, work: Path, progress: Progress = no_progress) -> Path | None:
    """The tarball to upload, or None when the VM downloads Apache's release."""
    if config.kafka.dist is not None:
        if not config.kafka.dist.is_file():
            raise ArtifactError(f"kafka.dist {config.kafka.dist} is not a file")
        return config.kafka.dist
    pin = kafka_pin(config)
    if pin is None:
        return None
    kafka = config.kafka
    tarball = work / f"kafka-{kafka.version}-{kafka.scala}-{pin[:16]}.tgz"
    if tarball.is_file():
        return tarball
    progress(ProgressEvent("kafka", kafka.version, "waiting", "fetching jars with Maven"))
    fetched = subprocess.run(
        ["bash", str(KAFKA_FETCH)],
        capture_output=True, text=True, check=False,
        env={"KAFKA_VERSION": kafka.version, "SCALA_VERSION": kafka.scala,
             "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(Path.home())},
    )  # fmt: skip
    if fetched.returncode != 0:
        errors = [line for line in fetched.stderr.splitlines() if "error:" in line]
        raise ArtifactError(
            f"kafka-fetch.sh failed: {(errors or [fetched.stderr.strip()[-500:]])[-1]}",
            hint='or set [kafka] source = "archive" '
            "(the VMs download Apache's release), or dist = a Kafka tarball"
            if fetched.returncode == KAFKA_FETCH_MISSING_TOOL
            else None,
        )
    pack_kafka(Path(fetched.stdout.strip().splitlines()[-1]), kafka_manifest(config), tarball)
    progress(ProgressEvent("kafka", str(tarball), "created"))
    return tarball


def pack_kafka(home: Path, manifest: Path, tarball: Path) -> None:
    """libs/, config/ and the manifest pinning them, under kafka/ (what kafka.sh installs)."""
    partial = tarball.with_suffix(".part")
    with tarfile.open(partial, "w:gz") as tar:
        tar.add(home / "libs", arcname="kafka/libs")
        tar.add(home / "config", arcname="kafka/config")
        tar.add(manifest, arcname=f"kafka/{KAFKA_MANIFEST}")
    partial.rename(tarball)


def deploy(
    config: GpucostConfig, inventory: Inventory, progress: Progress = no_progress
) -> list[StepResult]:
    """Install and wire the four roles; safe to repeat, resumes after a failure."""
    state = StateDir.of(config)
    state.ensure()
    state.write_inventory(inventory)
    secrets = load_secrets(state)
    work = state.artifacts
    artifacts = Artifacts(
        wheels=build_wheels(config, work / "wheels", progress),
        kafka_dist=kafka_dist(config, work, progress),
        kafka_pin=kafka_pin(config),
    )
    steps = build_steps(config, inventory, secrets, artifacts)
    server = (
        "SecantusDB (a MongoDB-wire stand-in)"
        if config.mongodb.server == "secantusdb"
        else f"MongoDB {config.mongodb.version}"
    )
    progress(ProgressEvent("database", config.vm_of("mongodb"), "exists", server))
    return run_steps(steps, lambda vm: connect(config, inventory, vm, notice=progress), progress)
