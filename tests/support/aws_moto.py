"""Shared by the AWS tests: moto's constants and a log of the provider's calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.exceptions import ClientError

REGION = "us-east-1"
ADMIN = "203.0.113.7/32"
READ_PREFIXES = ("Describe", "Get", "List")


Hook = Callable[..., Any]


@dataclass
class Calls:
    """Every EC2/SSM call the provider makes, by operation name, and the
    parameters of each (to read ClientTokens and launch requests back)."""

    names: list[str] = field(default_factory=list)
    params: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    hooks: list[tuple[str, Hook]] = field(default_factory=list)
    after: list[tuple[str, Hook]] = field(default_factory=list)

    @property
    def mutating(self) -> list[str]:
        return [n for n in self.names if not n.startswith(READ_PREFIXES)]

    def of(self, operation: str) -> list[dict[str, Any]]:
        return [p for name, p in self.params if name == operation]

    def clear(self) -> None:
        self.names.clear()
        self.params.clear()

    def inject(self, operation: str, hook: Hook) -> None:
        """Run `hook(params)` before each `operation` call; it may raise."""
        self.hooks.append((operation, hook))

    def inject_after(self, operation: str, hook: Hook) -> None:
        """Run `hook(parsed)` on each `operation` response; it may rewrite it."""
        self.after.append((operation, hook))


def client_error(code: str, operation: str, message: str = "injected") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


_LOADER = botocore.loaders.create_loader()


def new_session(region: str | None) -> boto3.session.Session:
    """A boto3 session sharing one model loader: parsing the EC2 model for every
    session would be most of each test's time."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    return boto3.session.Session(botocore_session=core, region_name=region)
