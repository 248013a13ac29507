"""Local state of a deployment in `.gpucost/<deployment>/`: private, written atomically.

The state holds what only this machine knows (launch tokens, generated passwords,
pinned host keys, the last inventory), so the directory is 0700 and every file 0600
from the moment it exists. For cloud resources the tags are the truth; state that
is lost is rebuilt from them. This module names every file of the folder;
`StateDir.of(config)` is the one way to reach it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Final, Protocol

from pydantic import ValidationError

from gpucost.errors import GpucostError
from gpucost.inventory import Inventory

DIR_MODE = 0o700
FILE_MODE = 0o600

INVENTORY_FILE: Final = "inventory.json"
"""The hosts as the last `up` or `status` found them: what `report`, `ssh` and
`verify` reach them by, whichever provider made them, with no cloud call."""
SECRETS_FILE: Final = "secrets.json"
"""The generated database passwords (`remote/deploy.py` makes them once)."""
HOST_KEYS_FILE: Final = "host_keys.json"
"""The pinned SSH host key of each VM (`remote/hostkeys.py`)."""
AWS_FILE: Final = "aws.json"
"""The region and the launch tokens of the AWS provider."""
LOGS_DIR: Final = "logs"
"""One log file per VM of everything run on it over SSH (passwords masked)."""
ARTIFACTS_DIR: Final = "artifacts"
"""Wheels and the Kafka tarball built on this machine for the hosts."""


class Deployment(Protocol):
    """What names a deployment's state: the settings (`GpucostConfig`) have both."""

    @property
    def state_root(self) -> Path: ...

    @property
    def deployment(self) -> str: ...


class StateError(GpucostError):
    """A state file exists but cannot be read."""


class StateDir:
    def __init__(self, root: Path, deployment: str) -> None:
        self.root = root
        self.path = root / deployment

    @classmethod
    def of(cls, config: Deployment) -> StateDir:
        return cls(config.state_root, config.deployment)

    def __repr__(self) -> str:
        return f"StateDir({str(self.path)!r})"

    def exists(self) -> bool:
        return self.path.is_dir()

    def ensure(self) -> Path:
        for directory in (self.root, self.path):
            directory.mkdir(mode=DIR_MODE, exist_ok=True)
            # mkdir's mode is filtered by the umask and ignored for an existing
            # directory: set it explicitly so a lax umask never exposes secrets.
            directory.chmod(DIR_MODE)
        return self.path

    def file(self, name: str) -> Path:
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"not a plain file name: {name!r}")
        return self.path / name

    def write_text(self, name: str, text: str) -> Path:
        """Write via a private temporary file and rename, so a reader or a crash
        never sees half a file and the content is never briefly world-readable."""
        self.ensure()
        target = self.file(name)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=self.path)
        try:
            os.fchmod(fd, FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return target

    def read_text(self, name: str) -> str | None:
        try:
            return self.file(name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def write_json(self, name: str, data: Any) -> Path:
        return self.write_text(name, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def read_json(self, name: str) -> Any:
        text = self.read_text(name)
        if text is None:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise StateError(
                f"state file {self.file(name)} is not valid JSON",
                hint="delete it; cloud resources are found again by their tags",
            ) from exc

    def log_file(self, vm: str) -> Path:
        return self.path / LOGS_DIR / f"{vm}.log"

    @property
    def artifacts(self) -> Path:
        return self.path / ARTIFACTS_DIR

    def write_inventory(self, inventory: Inventory) -> Path:
        return self.write_json(INVENTORY_FILE, inventory.model_dump(mode="json"))

    def read_inventory(self) -> Inventory:
        data = self.read_json(INVENTORY_FILE)
        if data is None:
            raise StateError(f"no {INVENTORY_FILE} in {self.path}", hint="run `gpucost up` first")
        try:
            return Inventory.model_validate(data)
        except ValidationError as error:
            raise StateError(
                f"{self.file(INVENTORY_FILE)} is not an inventory: {error.error_count()} errors",
                hint="run `gpucost status` to rebuild it",
            ) from None

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.file(name).unlink()

    def remove(self) -> None:
        """Forget the deployment locally (after `down`)."""
        shutil.rmtree(self.path, ignore_errors=True)
