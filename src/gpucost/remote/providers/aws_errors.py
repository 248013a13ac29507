"""AWS failures people meet, turned into one line with the fix.

Everything else from botocore still becomes a one-line CloudError naming the
refused call; only real bugs keep their traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from gpucost.errors import ConfigError, GpucostError

POLICY_HINT: Final = "grant the IAM permissions listed in docs/aws.md (the least gpucost needs)"
_CREDENTIAL_HINT: Final = (
    "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run `aws configure`"
)


class CloudError(GpucostError):
    """The cloud refused or could not do what was asked."""


class CapacityError(CloudError):
    """No capacity for the instance type in a zone (another zone may have some)."""


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def _short(message: str, limit: int = 160) -> str:
    # UnauthorizedOperation carries a long encoded blob: keep the readable start.
    first = message.split(". Encoded authorization failure message")[0]
    return first if len(first) <= limit else first[: limit - 1] + "…"


def translate(exc: BotoCoreError | ClientError, region: str | None) -> GpucostError:
    where = region or "the configured region"
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return CloudError("no AWS credentials found", hint=_CREDENTIAL_HINT)
    if isinstance(exc, NoRegionError):
        return ConfigError(
            "no AWS region set", hint="pass --region, or set GPUCOST_REGION or AWS_REGION"
        )
    if isinstance(exc, EndpointConnectionError):
        return CloudError(
            f"cannot reach the AWS endpoint for region {where}",
            hint="check --region (e.g. us-east-1), the network, and AWS_ENDPOINT_URL if set",
        )
    if not isinstance(exc, ClientError):
        return CloudError(f"AWS call failed: {_short(str(exc))}")

    code = error_code(exc)
    operation = exc.operation_name
    message = _short(str(exc.response.get("Error", {}).get("Message", "")))
    if code in {
        "AuthFailure",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "RequestExpired",
    }:
        return CloudError(f"AWS rejected the credentials ({code})", hint=_CREDENTIAL_HINT)
    if code == "OptInRequired":
        return CloudError(
            f"region {where} is not enabled for this account",
            hint="enable it in the account settings or pass another --region",
        )
    if code in {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"}:
        return CloudError(f"not allowed to call {operation} in {where}", hint=POLICY_HINT)
    if code == "VcpuLimitExceeded":
        return CloudError(
            f"the account's vCPU quota in {where} is used up",
            hint="ask for more (Service Quotas, 'Running On-Demand Standard instances') "
            "or pass a smaller --instance-type",
        )
    if code == "InsufficientInstanceCapacity":
        return CapacityError(
            f"AWS has no capacity for this instance type in {where} right now",
            hint="try another --instance-type, another --region, or later",
        )
    if code.startswith("InvalidAMIID"):
        return CloudError(
            f"image not usable in {where}: {message}",
            hint="pass an --image-id of this region, or leave it unset for Ubuntu 22.04",
        )
    if code == "ParameterNotFound":
        return CloudError(
            f"the public SSM image parameter is not found in {where}",
            hint="pass --image-id ami-... (an Ubuntu 22.04 AMI of this region)",
        )
    if code.startswith("InvalidSubnetID"):
        return ConfigError(
            f"subnet not found in {where}",
            hint="check --subnet-id, or unset it for the default VPC",
        )
    if code in {"RequestLimitExceeded", "Throttling", "ThrottlingException"}:
        return CloudError("AWS throttled the requests", hint="wait a minute and run it again")
    return CloudError(f"AWS refused {operation}: {code}: {message}")


@contextmanager
def aws_errors(region: str | None) -> Iterator[None]:
    """Turn botocore failures inside the block into one-line GpucostErrors."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, region) from exc


@contextmanager
def already_gone_ok() -> Iterator[None]:
    """Teardown is tolerant: a resource someone (or a previous `down`) already
    removed is the outcome we wanted, not a failure."""
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        if not (code.endswith("NotFound") or code == "Gateway.NotAttached"):
            raise
