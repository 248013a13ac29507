"""The support matrix: which OS each host runs and which MongoDB it can carry.

MongoDB publishes its Community packages per distribution release (its
platform-support table); an apt source for any other pair does not exist, and
the database host would fail half-way through `up`. So the pair is checked
before anything is created: by `init`, `up --dry-run` and `up`.

Every AWS host boots Ubuntu 22.04 (jammy) by default: the one Ubuntu LTS that
carries both MongoDB 7.0 (what the design names) and 8.0, and one image for all
four roles keeps the package set identical everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from gpucost.errors import ConfigError

if TYPE_CHECKING:
    from gpucost.config.settings import GpucostConfig


@dataclass(frozen=True, order=True)
class Release:
    distro: str
    """`ID` of /etc/os-release: ubuntu or debian."""
    version: str
    codename: str

    def __str__(self) -> str:
        return f"{self.distro.capitalize()} {self.version} ({self.codename})"


FOCAL: Final = Release("ubuntu", "20.04", "focal")
JAMMY: Final = Release("ubuntu", "22.04", "jammy")
NOBLE: Final = Release("ubuntu", "24.04", "noble")
BOOKWORM: Final = Release("debian", "12", "bookworm")
KNOWN: Final = (FOCAL, JAMMY, NOBLE, BOOKWORM)

MONGODB_RELEASES: Final[dict[str, tuple[Release, ...]]] = {
    "7.0": (FOCAL, JAMMY, BOOKWORM),
    "8.0": (FOCAL, JAMMY, NOBLE, BOOKWORM),
}
"""MongoDB Community series -> the releases MongoDB publishes apt packages for."""

UBUNTU_PARAMETER: Final = (
    "/aws/service/canonical/ubuntu/server/{version}/stable/current/amd64/hvm/{volume}/ami-id"
)
UBUNTU_2204_PARAMETER: Final = UBUNTU_PARAMETER.format(version="22.04", volume="ebs-gp2")
"""Canonical's public SSM parameter of the current Ubuntu 22.04 AMI (published
for gp2 only; the root volume is made gp3 at launch anyway)."""
UBUNTU_2404_PARAMETER: Final = UBUNTU_PARAMETER.format(version="24.04", volume="ebs-gp3")
DEFAULT_IMAGE_PARAMETER: Final = UBUNTU_2204_PARAMETER
LOCAL_RELEASE: Final = BOOKWORM
"""What the local provider's hosts run."""


def _by_word(word: str) -> Release | None:
    return next((r for r in KNOWN if word in (r.version, r.codename)), None)


def release_of_parameter(parameter: str) -> Release | None:
    """The release in a Canonical SSM parameter path (`.../server/22.04/...`)."""
    match = re.search(r"/ubuntu/server(?:-minimal)?/([a-z0-9.]+)/", parameter)
    return _by_word(match.group(1)) if match else None


def release_of_image_name(name: str) -> Release | None:
    """The release in an AMI name: Canonical's (`ubuntu-jammy-22.04-amd64-server-...`)
    and Debian's (`debian-12-amd64-...`). None: cannot tell."""
    lowered = name.lower()
    for release in KNOWN:
        if release.distro == "ubuntu" and re.search(rf"\b{release.codename}\b", lowered):
            return release
        if release.distro == "debian" and re.search(
            rf"debian-({release.version}|{release.codename})\b", lowered
        ):
            return release
    return None


def _nearest_series(release: Release, wanted: str) -> str | None:
    def key(series: str) -> tuple[int, float]:
        # Same major first, then the closest number.
        return (series.split(".")[0] != wanted.split(".")[0], abs(float(series) - float(wanted)))

    fitting = [s for s, releases in MONGODB_RELEASES.items() if release in releases]
    return min(fitting, key=key) if fitting else None


def check_mongodb(release: Release | None, version: str, where: str = "the database host") -> None:
    """Refuse a MongoDB series the release has no packages for: one line with
    both and the nearest choice that works."""
    if release is None:
        return  # an image we cannot name: mongodb.sh checks on the host
    releases = MONGODB_RELEASES.get(version)
    if releases is None:
        raise ConfigError(
            f"MongoDB {version} is not a series gpucost installs",
            hint="set [mongodb] version to one of " + ", ".join(MONGODB_RELEASES),
        )
    if release in releases:
        return
    other_os = next((r for r in (JAMMY, BOOKWORM, FOCAL) if r in releases), None)
    other_series = _nearest_series(release, version)
    choices = []
    if other_os is not None:
        choices.append(f"an image of {other_os}" + (" (the default)" if other_os == JAMMY else ""))
    if other_series is not None:
        choices.append(f'[mongodb] version = "{other_series}"')
    raise ConfigError(
        f"MongoDB {version} has no packages for {release}, the OS of {where}",
        hint="choose " + " or ".join(choices),
    )


def database_release(config: GpucostConfig) -> Release | None:
    """The OS the settings give the database host, when known without asking
    AWS: the local hosts' Debian, or the release in the image parameter. An
    explicit --image-id is named by AWS (`release_of_image_name`)."""
    if config.provider == "local":
        return LOCAL_RELEASE
    if config.image_id is not None:
        return None
    return release_of_parameter(config.image_parameter)


def check_settings(config: GpucostConfig, release: Release | None = None) -> None:
    """The whole check on a deployment's settings; `release` when it is known better."""
    if config.mongodb.server != "mongodb":
        return  # SecantusDB comes from PyPI and runs on any of them
    vm = config.vm_of("mongodb")
    check_mongodb(release or database_release(config), config.mongodb.version, vm)
