"""docs/aws.md's least-privilege IAM policy names exactly the EC2/SSM calls
the provider makes: every boto3 call in its source, every call a full moto
lifecycle records, and nothing else.

Fails on the docs before issue 11 (GetConsoleOutput, RebootInstances,
DescribeInstanceStatus and CreateTags on running instances were missing)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from gpucost.config.settings import GpucostConfig
from gpucost.remote.providers.aws import AwsProvider
from support.aws_moto import REGION, Calls, new_session

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
PROVIDER_SOURCES = sorted((ROOT / "src/gpucost/remote/providers").glob("aws*.py"))


def policy_actions() -> set[str]:
    text = (ROOT / "docs/aws.md").read_text()
    section = text[text.index("## IAM") :]
    block = re.search(r"```json\n(.*?)\n```", section, re.S)
    assert block is not None
    actions: set[str] = set()
    for statement in json.loads(block.group(1))["Statement"]:
        listed = statement["Action"]
        actions.update([listed] if isinstance(listed, str) else listed)
    return actions


def source_calls() -> set[str]:
    """`ec2:Operation` for every client method, paginator and waiter in the source."""
    clients = {s: new_session(REGION).client(s) for s in ("ec2", "ssm")}
    found: set[str] = set()
    for path in PROVIDER_SOURCES:
        text = path.read_text()
        for service, method in re.findall(r"\b(ec2|ssm)\.([a-z_]+)\(", text):
            if method in ("get_paginator", "get_waiter"):
                continue
            found.add(f"{service}:{clients[service].meta.method_to_api_mapping[method]}")
        for method in re.findall(r'get_paginator\("([a-z_]+)"\)', text):
            found.add(f"ec2:{clients['ec2'].meta.method_to_api_mapping[method]}")
        for waiter in re.findall(r'get_waiter\("([a-z_]+)"\)', text):
            found.add(f"ec2:{clients['ec2'].get_waiter(waiter).config.operation}")
        # Calls by name (aws_tags.leftovers asks type by type).
        for method in re.findall(r'"(describe_[a-z_]+)"', text):
            found.add(f"ec2:{clients['ec2'].meta.method_to_api_mapping[method]}")
    return found


def test_every_call_in_the_source_is_in_the_policy() -> None:
    missing = source_calls() - policy_actions()
    assert not missing, f"add to the IAM policy in docs/aws.md: {sorted(missing)}"


def test_the_policy_grants_nothing_the_code_does_not_call() -> None:
    extra = policy_actions() - source_calls()
    assert not extra, f"not called by the provider, remove from docs/aws.md: {sorted(extra)}"


def test_a_whole_lifecycle_calls_only_what_the_policy_allows(
    provider: AwsProvider, make_config: Any, calls: Calls, reachable: dict[str, bool]
) -> None:
    config: GpucostConfig = make_config()
    provider.ready(config, provider.converge(config))
    moved = make_config(admin_cidr="198.51.100.9/32")
    inventory = provider.converge(moved)
    for host in inventory.hosts:
        reachable[str(host.public_ip)] = False
    provider.ready(moved, inventory)
    provider.inventory(moved)
    provider.destroy(moved)
    ssm_calls = {"GetParameter"}
    made = {f"{'ssm' if n in ssm_calls else 'ec2'}:{n}" for n in calls.names}
    assert "ec2:RebootInstances" in made
    assert made <= policy_actions(), sorted(made - policy_actions())
