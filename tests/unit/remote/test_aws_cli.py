"""`init`, `up`, `down`, `status` through the real app and `run_guarded`, with
the AWS provider on moto: what people see, and the errors they meet as one
line and exit 1."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gpucost.remote.providers.aws import AwsProvider
from gpucost.remote.providers.aws_tags import leftovers
from support.aws_moto import ADMIN, REGION, Calls, client_error
from support.cli import Outcome, gpucost

pytestmark = pytest.mark.unit


@pytest.fixture
def up_args(public_key: Path, image_id: str) -> Callable[..., list[str]]:
    def make(*extra: str, admin: str = ADMIN) -> list[str]:
        return [
            "up",
            "--provider",
            "aws",
            "--region",
            REGION,
            "--deployment",
            "test",
            "--admin-cidr",
            admin,
            "--ssh-public-key",
            str(public_key),
            "--image-id",
            image_id,
            *extra,
        ]

    return make


AWS = ["--provider", "aws", "--region", REGION, "--deployment", "test"]


def assert_one_line_error(out: Outcome, *fragments: str) -> None:
    assert out.code == 1, out.stdout + out.stderr
    # Progress lines may come first; the error is the last line, and one line.
    lines = out.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == lines[-1:], out.stderr
    assert "Traceback" not in out.stderr
    for fragment in fragments:
        assert fragment in errors[0]


def test_up_twice_status_down(
    monkeypatch: pytest.MonkeyPatch,
    use_provider: AwsProvider,
    up_args: Callable[..., list[str]],
    calls: Calls,
    ec2: Any,
) -> None:
    first = gpucost(monkeypatch, *up_args("--infra-only", "--yes"))
    assert first.code == 0, first.stderr
    assert "created security group gpucost-test-mongodb" in " ".join(first.stderr.split())
    assert first.stdout.count("running") == 4

    calls.clear()
    second = gpucost(monkeypatch, *up_args("--infra-only", "--yes", "--json"))
    assert second.code == 0, second.stderr
    assert calls.mutating == []
    hosts = json.loads(second.stdout)

    status = gpucost(monkeypatch, "status", *AWS, "--json")
    assert status.code == 0, status.stderr
    listed = json.loads(status.stdout)
    assert listed == hosts
    assert [h["name"] for h in listed] == ["vm1", "vm2", "vm3", "vm4"]
    for host in listed:
        assert {"name", "role", "state", "public_ip", "private_ip"} <= set(host)
        assert host["state"] == "running"

    table = gpucost(monkeypatch, "status", *AWS)
    assert "kafka-zk" in table.stdout
    assert hosts[0]["public_ip"] in table.stdout

    down = gpucost(monkeypatch, "down", *AWS, "--yes")
    assert down.code == 0, down.stderr
    assert down.stdout.count("gpucost-test-vm") == 4
    assert leftovers(ec2, "test") == []


def test_dry_run_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
    use_provider: AwsProvider,
    up_args: Callable[..., list[str]],
    calls: Calls,
    ec2: Any,
) -> None:
    out = gpucost(monkeypatch, *up_args("--dry-run"))
    assert out.code == 0, out.stderr
    assert "create" in out.stdout
    assert "gpucost-test-vm4" in out.stdout
    assert calls.mutating == []
    assert leftovers(ec2, "test") == []

    as_json = gpucost(monkeypatch, *up_args("--dry-run", "--json"))
    changes = json.loads(as_json.stdout)
    assert {c["action"] for c in changes} >= {"create"}


def test_up_asks_first(
    monkeypatch: pytest.MonkeyPatch,
    use_provider: AwsProvider,
    up_args: Callable[..., list[str]],
    ec2: Any,
) -> None:
    out = gpucost(monkeypatch, *up_args("--infra-only"), stdin="n\n")
    assert out.code == 1
    assert leftovers(ec2, "test") == []


def test_up_hands_the_hosts_to_the_deploy_and_reports_its_failure(
    monkeypatch: pytest.MonkeyPatch, use_provider: AwsProvider, up_args: Callable[..., list[str]]
) -> None:
    # The library's own deploy runs after the hosts (no SSH here: it fails as a
    # deploy that cannot reach a VM would), and the inventory is still shown.
    from gpucost.errors import GpucostError
    from gpucost.remote import deploy

    def unreachable(*_: object) -> None:
        raise GpucostError("cannot reach vm1 over SSH", hint="check --admin-cidr")

    monkeypatch.setattr(deploy, "deploy", unreachable)
    out = gpucost(monkeypatch, *up_args("--yes"))
    assert_one_line_error(out, "cannot reach vm1 over SSH", "--admin-cidr")
    assert out.stdout.count("running") == 4


def test_local_provider_checks_the_key_before_docker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "none.pub"
    out = gpucost(monkeypatch, "up", "--provider", "local", "--ssh-public-key", str(missing))
    assert out.code == 2, out.stderr
    assert f"SSH public key {missing} not found" in out.stderr


def test_down_asks_first(
    monkeypatch: pytest.MonkeyPatch,
    use_provider: AwsProvider,
    up_args: Callable[..., list[str]],
    ec2: Any,
) -> None:
    assert gpucost(monkeypatch, *up_args("--infra-only", "--yes")).code == 0
    out = gpucost(monkeypatch, "down", *AWS, stdin="n\n")
    assert out.code == 1
    assert len(leftovers(ec2, "test")) > 0


def test_down_finds_everything_without_state_or_flags_for_region(
    monkeypatch: pytest.MonkeyPatch,
    use_provider: AwsProvider,
    up_args: Callable[..., list[str]],
    ec2: Any,
) -> None:
    assert gpucost(monkeypatch, *up_args("--infra-only", "--yes")).code == 0
    # The region recorded by `up` is used when none is given...
    out = gpucost(monkeypatch, "down", "--provider", "aws", "--deployment", "test", "--yes")
    assert out.code == 0, out.stderr
    assert leftovers(ec2, "test") == []
    # ...and with no state at all, the AWS default region and the tags suffice.
    assert gpucost(monkeypatch, *up_args("--infra-only", "--yes")).code == 0
    for path in Path(".gpucost/test").iterdir():
        path.unlink()
    out = gpucost(monkeypatch, "down", "--provider", "aws", "--deployment", "test", "--yes")
    assert out.code == 0, out.stderr
    assert leftovers(ec2, "test") == []


def test_admin_address_changed(
    monkeypatch: pytest.MonkeyPatch,
    use_provider: AwsProvider,
    up_args: Callable[..., list[str]],
    ec2: Any,
) -> None:
    assert gpucost(monkeypatch, *up_args("--infra-only", "--yes")).code == 0
    declined = gpucost(monkeypatch, *up_args("--infra-only", admin="198.51.100.9/32"), stdin="n\n")
    assert_one_line_error(declined, ADMIN, "198.51.100.9/32", "gpucost up --yes")
    accepted = gpucost(monkeypatch, *up_args("--infra-only", admin="198.51.100.9/32"), stdin="y\n")
    assert accepted.code == 0, accepted.stderr
    rules = {
        r.get("CidrIpv4")
        for r in ec2.describe_security_group_rules()["SecurityGroupRules"]
        if not r["IsEgress"] and r.get("CidrIpv4")
    }
    assert rules == {"198.51.100.9/32"}


@pytest.mark.parametrize(
    ("operation", "code", "fragments"),
    [
        (
            "DescribeKeyPairs",
            "UnauthorizedOperation",
            ["not allowed to call DescribeKeyPairs", "docs/aws.md"],
        ),
        (
            "CreateSecurityGroup",
            "UnauthorizedOperation",
            ["not allowed to call CreateSecurityGroup"],
        ),
        ("RunInstances", "VcpuLimitExceeded", ["vCPU quota", "--instance-type"]),
        ("RunInstances", "InsufficientInstanceCapacity", ["no capacity", "another"]),
        ("DescribeKeyPairs", "AuthFailure", ["rejected the credentials", "AWS_PROFILE"]),
        ("DescribeKeyPairs", "OptInRequired", ["not enabled"]),
    ],
)
def test_aws_errors_are_one_line(
    monkeypatch: pytest.MonkeyPatch,
    use_provider: AwsProvider,
    up_args: Callable[..., list[str]],
    calls: Calls,
    operation: str,
    code: str,
    fragments: list[str],
) -> None:
    def refuse(params: dict[str, Any]) -> None:
        raise client_error(code, operation, "Encoded authorization failure message: xyz")

    calls.inject(operation, refuse)
    out = gpucost(monkeypatch, *up_args("--infra-only", "--yes"))
    assert_one_line_error(out, *fragments)
    assert "xyz" not in out.stderr


def test_capacity_everywhere_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
    use_provider: AwsProvider,
    up_args: Callable[..., list[str]],
    calls: Calls,
) -> None:
    tried: set[str] = set()

    def none_anywhere(params: dict[str, Any]) -> None:
        tried.add(params["NetworkInterfaces"][0]["SubnetId"])
        raise client_error("InsufficientInstanceCapacity", "RunInstances")

    calls.inject("RunInstances", none_anywhere)
    out = gpucost(monkeypatch, *up_args("--infra-only", "--yes"))
    assert_one_line_error(out, "no capacity")
    assert len(tried) == 6  # every default subnet (zone) of us-east-1 was tried


def test_missing_credentials(
    monkeypatch: pytest.MonkeyPatch, use_provider: AwsProvider, up_args: Callable[..., list[str]]
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    out = gpucost(monkeypatch, *up_args("--infra-only", "--yes"))
    assert_one_line_error(out, "no AWS credentials found", "aws configure")


def test_wrong_region(
    monkeypatch: pytest.MonkeyPatch, use_provider: AwsProvider, up_args: Callable[..., list[str]]
) -> None:
    args = up_args("--infra-only", "--yes")
    args[args.index(REGION)] = "us-east1"
    out = gpucost(monkeypatch, *args)
    assert_one_line_error(out, "unknown AWS region 'us-east1'", "--region")


def test_unreachable_endpoint_is_one_line() -> None:
    from botocore.exceptions import EndpointConnectionError

    from gpucost.remote.providers.aws_errors import translate

    error = translate(EndpointConnectionError(endpoint_url="https://ec2.x"), "eu-north-9")
    assert "eu-north-9" in error.one_line()
    assert "--region" in error.one_line()


def test_missing_admin_cidr_and_key(
    monkeypatch: pytest.MonkeyPatch, use_provider: AwsProvider, image_id: str
) -> None:
    out = gpucost(monkeypatch, "up", *AWS, "--image-id", image_id, "--yes", "--infra-only")
    assert out.code == 2
    assert "--admin-cidr" in out.stderr
    out = gpucost(
        monkeypatch,
        "up",
        *AWS,
        "--admin-cidr",
        ADMIN,
        "--ssh-public-key",
        "missing.pub",
        "--yes",
        "--infra-only",
    )
    assert out.code == 2
    assert "missing.pub not found" in out.stderr


def test_init_writes_a_commented_file_that_up_reads(
    monkeypatch: pytest.MonkeyPatch,
    use_provider: AwsProvider,
    public_key: Path,
    image_id: str,
    calls: Calls,
) -> None:
    out = gpucost(
        monkeypatch,
        "init",
        "--provider",
        "aws",
        "--region",
        REGION,
        "--deployment",
        "test",
        "--admin-cidr",
        ADMIN,
        "--ssh-public-key",
        str(public_key),
    )
    assert out.code == 0, out.stderr
    text = Path("gpucost.toml").read_text()
    assert text.count("\n# ") >= 8
    assert 'admin_cidr = "203.0.113.7/32"' in text
    assert "[roles]" in text
    assert 'vm3 = "processor"' in text
    # No flags but the image: everything else comes from the file.
    out = gpucost(monkeypatch, "up", "--image-id", image_id, "--infra-only", "--dry-run")
    assert out.code == 0, out.stderr
    assert "gpucost-test-kafka-zk" in out.stdout
    again = gpucost(monkeypatch, "init", "--no-detect-ip")
    assert again.code == 1
    assert "--force" in again.stderr
