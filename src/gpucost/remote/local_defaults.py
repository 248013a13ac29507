"""What the deploy must do differently on the local provider's hosts, known
before any host exists, so the settings can say it (and a user can override it).

- No route to MongoDB's apt repository on machines such as CI: the MongoDB-wire
  server SecantusDB (`[mongodb] server`), chosen explicitly, never a fallback.
- No registry inside vm3/vm4 either: the processor and producer images start
  FROM the Debian python image built here, uploaded as a `docker save` archive.

Imports nothing from gpucost: `config` uses it while it is itself loading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

PYTHON_IMAGE: Final = "gpucost-python:bookworm"
PYTHON_IMAGE_VERSION: Final = "1"
"""Bump with the python image's recipe: the archive's name carries it."""
PYTHON_VERSION: Final = "3.11"
"""bookworm's python3: the deploy builds the wheels for it."""
MONGODB_SERVER: Final = "secantusdb"


def cache_dir() -> Path:
    return Path.home() / ".cache" / "gpucost"


def python_archive(root: Path | None = None) -> Path:
    name = PYTHON_IMAGE.replace(":", "-").replace("/", "-")
    return (root or cache_dir()) / "images" / f"{name}-{PYTHON_IMAGE_VERSION}.tar.gz"


def apply(data: dict[str, Any]) -> dict[str, Any]:
    """Fill the [mongodb] and [images] keys the user left unset; keep the rest. Kafka
    needs nothing here: every provider's hosts get the pinned jar set uploaded."""
    mongodb = data.get("mongodb")
    if mongodb is None or (isinstance(mongodb, dict) and "server" not in mongodb):
        data = {**data, "mongodb": {**(mongodb or {}), "server": MONGODB_SERVER}}
    images = data.get("images")
    if images is None or (isinstance(images, dict) and "base" not in images):
        local = {"base": PYTHON_IMAGE, "python": PYTHON_VERSION, "base_archive": python_archive()}
        data = {**data, "images": {**local, **(images or {})}}
    return data
