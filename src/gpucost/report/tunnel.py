"""Reaching a deployment's MongoDB for `report`: an SSH tunnel to vm2, never a port.

MongoDB's port is open to the processor alone (see docs/architecture.md), so the
report logs in to the database host with the managed key, as the admin already may,
and forwards a loopback port to MongoDB through that SSH connection. paramiko stays
behind `gpucost.remote.ssh`; this module only wires the deployment's state to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from gpucost.config.settings import GpucostConfig
from gpucost.report.source import MongoCredentials, tunnelled
from gpucost.state import StateDir

CONNECT_RETRY_S: Final = 15.0
"""A report does not wait for a booting VM the way `up` does."""


def stored_credentials(state: StateDir, database: str, host: str) -> MongoCredentials:
    """The application user's login, as the deploy over SSH generated and stored it."""
    from gpucost.remote.deploy import load_secrets
    from gpucost.remote.flows import MONGO_PORT
    from gpucost.remote.role_steps import APP_USER

    secrets = load_secrets(state, create=False)
    return MongoCredentials(
        username=APP_USER,
        password=secrets.mongo_app_password,
        database=database,
        host=host,
        port=MONGO_PORT,
    )


@contextmanager
def deployment_uri(config: GpucostConfig) -> Iterator[str]:
    """A MongoDB URI for the deployment of `config`, valid inside the `with`.

    The inventory is the one the last `up` or `status` stored: a read needs no cloud
    call. The SSH connection is the deploy's (managed key, pinned host key,
    passwords masked in the VM's log).
    """
    from gpucost.remote.deploy import connect

    state = StateDir.of(config)
    inventory = state.read_inventory()
    host = inventory.by_role("mongodb")
    # MongoDB listens on vm2's private address for the processor (SecantusDB on that
    # address only); from vm2 itself that is local traffic, which ufw lets through.
    credentials = stored_credentials(state, config.mongodb.database, host.private_ip or "127.0.0.1")
    connection = connect(config, inventory, host.name, retry_for=CONNECT_RETRY_S)
    try:
        with tunnelled(connection, credentials) as uri:
            yield uri
    finally:
        connection.close()
