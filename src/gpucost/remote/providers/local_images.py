"""The two images the local provider builds from Debian, with no registry:

- `gpucost-host:bookworm`: what a fresh cloud VM is (systemd, cloud-init, sshd,
  sudo, ufw, python3), minus anything per host: no SSH host keys, no machine-id,
  no user. cloud-init makes those at first boot from the host's NoCloud seed.
- `gpucost-python:bookworm`: the base of the processor and producer images on
  vm3/vm4, whose inner Docker has no registry either. Also saved as a tarball
  that the deploy uploads and `docker load`s.

Each is built once (debootstrap, ~1 min) and kept: its label says which recipe
made it, so a changed recipe rebuilds and an unchanged one is skipped.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gpucost.remote import local_defaults
from gpucost.remote.providers.base import Progress, ProgressEvent, no_progress
from gpucost.remote.providers.local_commands import (
    HOST_IMAGE,
    LABEL_IMAGE,
    PYTHON_IMAGE,
    SEED_DIR,
    image_inspect,
)
from gpucost.remote.providers.local_engine import Docker, LocalError, apt_install

SUITE: Final = "bookworm"
MIRROR: Final = "http://deb.debian.org/debian"
SECURITY_MIRROR: Final = "http://deb.debian.org/debian-security"
PATH_ENV: Final = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

SSHD_CLOUD_CONF: Final = """\
# As cloud images ship (cloud-init's ssh_pwauth: false): keys only, from boot on.
PasswordAuthentication no
KbdInteractiveAuthentication no
"""
CLOUD_INIT_CONF_PATH: Final = "etc/cloud/cloud.cfg.d/90-gpucost-local.cfg"
CLOUD_INIT_CONF: Final = """\
# gpucost's local hosts boot as an EC2 instance of Canonical's Ubuntu image does:
# cloud-init reads the provider's NoCloud seed (meta-data with the deployment's
# public key, and the very user data the AWS provider sends), makes the `ubuntu`
# login, generates this host's SSH keys and prints them to the console.
datasource_list: [NoCloud, None]
# Docker gives each host its address; cloud-init must not rewrite the network.
network: {config: disabled}
locale: C.UTF-8
ssh_genkeytypes: [rsa, ecdsa, ed25519]
system_info:
  default_user:
    name: ubuntu
    lock_passwd: true
    gecos: Ubuntu
    groups: [adm, sudo]
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
    shell: /bin/bash
"""


@dataclass(frozen=True)
class Recipe:
    image: str
    version: str
    """Bump to rebuild images made by an older recipe."""
    packages: tuple[str, ...]
    changes: tuple[str, ...]
    """`docker import --change` instructions: an imported rootfs has no config."""
    customise: Callable[[Path], None]

    @property
    def label(self) -> str:
        return f"{self.image}/{self.version}"


def _sources(root: Path) -> None:
    # debootstrap writes only the main suite; a fresh VM also has updates and security.
    (root / "etc/apt/sources.list").write_text(
        f"deb {MIRROR} {SUITE} main\n"
        f"deb {MIRROR} {SUITE}-updates main\n"
        f"deb {SECURITY_MIRROR} {SUITE}-security main\n"
    )


def _clean(root: Path) -> None:
    for path in (root / "var/cache/apt/archives").glob("*.deb"):
        path.unlink()
    shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
    (root / "var/lib/apt/lists/partial").mkdir(parents=True)


def customise_host(root: Path) -> None:
    _sources(root)
    _clean(root)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    # Empty, not absent: systemd then makes a new id per host at boot.
    (root / "etc/machine-id").write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    (root / "etc/hostname").unlink(missing_ok=True)
    (root / "etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/ssh/sshd_config.d/60-cloudimg-settings.conf").write_text(SSHD_CLOUD_CONF)
    conf = root / CLOUD_INIT_CONF_PATH
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(CLOUD_INIT_CONF)
    # Each host is a first boot: cloud-init's per-instance state starts empty,
    # and the provider copies the seed under seed/ before the host starts.
    shutil.rmtree(root / "var/lib/cloud", ignore_errors=True)
    (root / SEED_DIR).parent.mkdir(parents=True)


def customise_python(root: Path) -> None:
    _sources(root)
    _clean(root)
    # Like python:3.x-slim, `pip install` works without a venv: the container
    # is the isolation that PEP 668's marker protects.
    for marker in (root / "usr/lib").glob("python3*/EXTERNALLY-MANAGED"):
        marker.unlink()


HOST_RECIPE: Final = Recipe(
    image=HOST_IMAGE,
    version="5",
    packages=(
        "cloud-init",
        # debootstrap does not resolve virtual packages: python3-cryptography
        # (for cloud-init) needs the cffi backend's api-min/max, which this provides.
        "python3-cffi-backend",
        "systemd",
        "systemd-sysv",
        "dbus",
        "openssh-server",
        "sudo",
        "iproute2",
        "iptables",
        "python3",
        "ufw",
        "ca-certificates",
        "curl",
        "gnupg",
        "procps",
        "lsb-release",
        "netcat-openbsd",
        "iputils-ping",
    ),
    changes=(f"ENV {PATH_ENV}", 'CMD ["/sbin/init"]'),
    customise=customise_host,
)
PYTHON_RECIPE: Final = Recipe(
    image=PYTHON_IMAGE,
    version=local_defaults.PYTHON_IMAGE_VERSION,
    packages=("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates"),
    changes=(f"ENV {PATH_ENV}", "ENV LANG=C.UTF-8", 'CMD ["python3"]'),
    customise=customise_python,
)
RECIPES: Final = (HOST_RECIPE, PYTHON_RECIPE)


def debootstrap_command(recipe: Recipe, root: Path, cache_dir: Path) -> list[str]:
    return [
        "debootstrap",
        "--variant=minbase",
        f"--cache-dir={cache_dir}",
        "--include=" + ",".join(recipe.packages),
        SUITE,
        str(root),
        MIRROR,
    ]


def import_command(recipe: Recipe) -> list[str]:
    changes = [f"LABEL {LABEL_IMAGE}={recipe.label}", *recipe.changes]
    return [
        "docker",
        "import",
        *(arg for change in changes for arg in ("--change", change)),
        "-",
        recipe.image,
    ]


def built(docker: Docker, recipe: Recipe) -> bool:
    """True when the image exists and this recipe made it."""
    result = docker.run(image_inspect(recipe.image), check=False)
    return result.returncode == 0 and f'"{recipe.label}"' in result.stdout


def build(docker: Docker, recipe: Recipe, cache_dir: Path) -> None:
    # One package cache per recipe: two debootstraps writing one cache at once
    # would race on the .deb files they share.
    debs = cache_dir / "debs" / recipe.image.split(":")[0]
    debs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gpucost-rootfs-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "root"
        result = subprocess.run(
            debootstrap_command(recipe, root, debs), capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise LocalError(
                f"debootstrap of {recipe.image} failed: {' | '.join(tail)}",
                hint=f"is {MIRROR} reachable? (`apt-get update` tells)",
            )
        recipe.customise(root)
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE
        )
        imported = subprocess.run(
            import_command(recipe), stdin=tar.stdout, capture_output=True, text=True, check=False
        )
        if tar.stdout is not None:
            tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise LocalError(f"docker import of {recipe.image} failed: {imported.stderr.strip()}")


def archive_path(cache_dir: Path) -> Path:
    """Where the python image's archive is kept (the deploy's `images.base_archive`)."""
    return local_defaults.python_archive(cache_dir)


def save_archive(docker: Docker, recipe: Recipe, path: Path) -> None:
    """`docker save | gzip` to a temporary name, then rename: a half-written
    archive is never mistaken for a finished one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as out:
        save = subprocess.Popen(["docker", "save", recipe.image], stdout=subprocess.PIPE)
        gzip = subprocess.run(["gzip", "-1"], stdin=save.stdout, stdout=out, check=False)
        if save.stdout is not None:
            save.stdout.close()
    if save.wait() != 0 or gzip.returncode != 0:
        partial.unlink(missing_ok=True)
        raise LocalError(f"docker save {recipe.image} failed")
    partial.replace(path)


def ensure_images(docker: Docker, cache_dir: Path, progress: Progress = no_progress) -> None:
    """Build what is missing (both at once: most of the time is downloads and
    dpkg, which overlap well) and save the python image's archive."""
    missing = [recipe for recipe in RECIPES if not built(docker, recipe)]
    for recipe in RECIPES:
        if recipe not in missing:
            progress(ProgressEvent("image", recipe.image, "exists"))
    if missing:
        if shutil.which("debootstrap") is None:
            apt_install("debootstrap")
        progress(
            ProgressEvent("image", ", ".join(r.image for r in missing), "waiting", "debootstrap")
        )
        with ThreadPoolExecutor(max_workers=len(missing)) as pool:
            for future in [pool.submit(build, docker, r, cache_dir) for r in missing]:
                future.result()
        for recipe in missing:
            progress(ProgressEvent("image", recipe.image, "created", f"label {recipe.label}"))
    archive = archive_path(cache_dir)
    if PYTHON_RECIPE in missing or not archive.is_file():
        progress(ProgressEvent("image archive", str(archive), "waiting", "docker save"))
        save_archive(docker, PYTHON_RECIPE, archive)
        progress(ProgressEvent("image archive", str(archive), "created"))
