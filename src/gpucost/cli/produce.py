"""`gpucost produce`: set the rate of the producers on a deployment, or run one-off
producers for a while."""

from __future__ import annotations

from typing import Annotated

import typer

from gpucost.cli.options import ConfigOpt, DeploymentOpt, JsonOpt, ProviderOpt
from gpucost.cli.output import console
from gpucost.cli.render import print_json
from gpucost.config.settings import load_config


def produce(
    rate: Annotated[float, typer.Option(help="Events per second, per producer.", min=0.001)] = 50,
    duration: Annotated[
        float | None, typer.Option(help="Seconds to run one-off producers for.", min=0.001)
    ] = None,
    count: Annotated[int | None, typer.Option(help="Events each one-off producer sends.")] = None,
    replicas: Annotated[int, typer.Option(help="How many producers.", min=1, max=2)] = 1,
    config_file: ConfigOpt = None,
    deployment: DeploymentOpt = None,
    provider: ProviderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set the producers on vm4 to a rate, or run one-off producers for a while.

    Without --duration or --count the long-running producers change rate (until
    the next `gpucost up`, which applies [producers] of the settings).

    Example: gpucost produce --rate 50 --duration 10
    """
    from gpucost.remote.commands import produce as run_produce

    config = load_config(config_file, deployment=deployment, provider=provider)
    outcome = run_produce(config, rate=rate, count=count, duration=duration, replicas=replicas)
    if as_json:
        print_json(outcome)
    elif isinstance(outcome, str):
        console.print(f"producers: {replicas} at {rate:g}/s each ({outcome})")
    else:
        for summary in outcome:
            console.print(
                f"sent {summary.get('sent')} acked {summary.get('acked')} "
                f"failed {summary.get('failed')} at {summary.get('rate', 0):.1f}/s"
            )
