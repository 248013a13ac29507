"""Reaching a deployment's MongoDB for `report`: an SSH tunnel to vm2, never a port.

MongoDB's port is open to the processor alone (see docs/architecture.md), so the
report logs in to the database host with the managed key, as the admin already may,
and forwards a loopback port to MongoDB through that SSH connection. paramiko stays
behind `gpucost.remote.ssh`; this module only wires the deployment's state to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from pydantic import ValidationError

from gpucost.config import GpucostConfig
from gpucost.errors import GpucostError
from gpucost.inventory import Inventory
from gpucost.report_source import MongoCredentials, tunnelled
from gpucost.state import StateDir

INVENTORY_FILE: Final = "inventory.json"
SECRETS_FILE: Final = "secrets.json"
"""The deploy stage's generated passwords (`remote.plan.Secrets` as JSON)."""
APP_USER: Final = "gpucost"
MONGO_PORT: Final = 27017
CONNECT_RETRY_S: Final = 15.0
"""A report does not wait for a booting VM the way `up` does."""


class DeploymentUnreachable(GpucostError):
    """The deployment's state is not enough to reach its database."""


def load_inventory(state: StateDir) -> Inventory:
    data = state.read_json(INVENTORY_FILE)
    if data is None:
        raise DeploymentUnreachable(
            f"no {INVENTORY_FILE} in {state.path}", hint="run `gpucost up` first"
        )
    try:
        return Inventory.model_validate(data)
    except ValidationError as error:
        raise DeploymentUnreachable(
            f"{state.file(INVENTORY_FILE)} is not an inventory: {error.error_count()} errors",
            hint="run `gpucost status` to rebuild it",
        ) from None


def stored_credentials(state: StateDir, database: str, host: str) -> MongoCredentials:
    """The application user's login, as the deploy stage generated and stored it."""
    data: Any = state.read_json(SECRETS_FILE)
    password = data.get("mongo_app_password") if isinstance(data, dict) else None
    if not isinstance(password, str) or not password:
        raise DeploymentUnreachable(
            f"no MongoDB credentials in {state.file(SECRETS_FILE)}",
            hint="deploy with `gpucost up` first, or set MONGODB_URI",
        )
    return MongoCredentials(
        username=APP_USER, password=password, database=database, host=host, port=MONGO_PORT
    )


@contextmanager
def deployment_uri(config: GpucostConfig) -> Iterator[str]:
    """A MongoDB URI for the deployment of `config`, valid inside the `with`."""
    from gpucost.remote.hostkeys import HostKeyStore
    from gpucost.remote.ssh import SshConnection, Target

    state = StateDir(config.state_root, config.deployment)
    host = load_inventory(state).by_role("mongodb")
    # MongoDB listens on vm2's private address for the processor; from vm2 itself that
    # address is local traffic, which the host firewall lets through.
    credentials = stored_credentials(state, config.mongodb.database, host.private_ip or "127.0.0.1")
    connection = SshConnection.connect(
        Target.of(host, config.private_key),
        HostKeyStore(state),
        retry_for=CONNECT_RETRY_S,
        notice=lambda _: None,
    )
    try:
        with tunnelled(connection, credentials) as uri:
            yield uri
    finally:
        connection.close()
