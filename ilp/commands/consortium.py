"""What crosses between a centre and the hub: signing keys, signed packages, live federated rounds, pooling."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from foundation.errors import ConfigError
from ilp.commands.options import (
    ZONES,
    GridOption,
    ProtectOption,
    ThresholdOption,
)


def keys_command(
    centre: Annotated[str, typer.Option("--centre", help="The centre the key pair is for.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for <centre>.key (private) and <centre>.pub.")],
) -> None:
    """A new Ed25519 key pair for a centre to sign its packages: keep the .key, send the .pub to the hub.

    Example: ilp keys --centre aurora --out /etc/ilp/keys
    """
    from ilp.packages import generate_keys

    private, public = generate_keys(centre, out)
    typer.echo(f"private key (keep it at the centre, readable by the pipeline only): {private}")
    typer.echo(f"public key (for the hub's trust folder): {public}")


def package_command(
    centre: Annotated[str, typer.Option("--centre", help="The centre whose published cohort leaves.")],
    key: Annotated[Path, typer.Option("--key", help="The centre's private key (from `ilp keys`).")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the package into.")],
    root: Annotated[Path, typer.Option("--root", help="Root of the centre's zones.")] = ZONES,
    kind: Annotated[str, typer.Option("--kind", help="rows (the validated cohort) or aggregates.")] = "aggregates",
    grid_months: GridOption = None,
) -> None:
    """A signed package of the centre's published, validated cohort for the consortium's hub.

    `rows`: the pseudonymised cohort tables, where the centre's agreement lets rows leave; `aggregates`: event and
    censoring counts per time for every endpoint and prognostic factor (docs/federated.md says what they disclose).

    Example: ilp package --root /data/ilp --centre aurora --key /etc/ilp/keys/aurora.key --out /outbox
    """
    from ilp.packages import export_package

    if kind not in ("rows", "aggregates"):
        raise ConfigError(f"--kind must be rows or aggregates, not {kind!r}")
    if not key.is_file():
        raise ConfigError(f"no key file at {key}: make the centre's key pair with `ilp keys --centre {centre}`")
    package = export_package(root, centre, "rows" if kind == "rows" else "aggregates", key.read_bytes(), out,
                             grid_months=grid_months)
    typer.echo(f"signed package: {package}")


def serve_command(
    centre: Annotated[str, typer.Option("--centre", help="The centre answering.")],
    exchange: Annotated[Path, typer.Option("--exchange", help="The folder shared with the hub for this centre.")],
    root: Annotated[Path, typer.Option("--root", help="Root of the centre's zones.")] = ZONES,
    grid_months: GridOption = None,
    idle_timeout: Annotated[float | None, typer.Option(
        "--idle-timeout", min=1, help="Stop after this many seconds without a request.")] = None,
    protect: ProtectOption = True,
    threshold: ThresholdOption = 5,
) -> None:
    """The centre's side of federated rounds: answer the hub's requests (the Cox model's iterations, survival
    counts) from the published, validated cohort with aggregates only, until the hub says stop. Only requests
    about the analysis plan's endpoints, factors and covariates are answered, under the output policy; anything
    else is refused with its reason, and every request is logged.

    Example: ilp serve --root /data/ilp --centre aurora --exchange /mnt/consortium/aurora
    """
    from analytics import AnalysisPlan, OutputPolicy, read_snapshot
    from analytics.federated import Site
    from ilp.exchange import serve
    from ilp.packages import published_centre

    snapshot, _ = published_centre(root, centre)
    plan = AnalysisPlan(policy=OutputPolicy(threshold, threshold, protect=protect))
    answered = serve(Site(read_snapshot(snapshot).for_centre(centre), plan, grid_months), exchange, idle_timeout)
    logging.getLogger("ilp.exchange").info("answered %d requests", answered)


def pool_command(
    packages: Annotated[list[Path], typer.Argument(help="Centre package folders.")],
    trust: Annotated[Path, typer.Option("--trust", help="Folder of the centres' public keys (<centre>.pub).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the consortium's report.")],
    live: Annotated[Path | None, typer.Option(
        "--live", help="Folder of per-centre exchange folders (`ilp serve`): the Cox model for aggregates centres.")]
        = None,
    protect: ProtectOption = True,
    threshold: ThresholdOption = 5,
) -> None:
    """The hub: verify every centre's signed package (exit 8 if one is unsigned or tampered with) and pool them,
    rows or aggregates, into one report.

    Example: ilp pool --trust /etc/ilp/trusted --out /share/consortium-report /inbox/*
    """
    from analytics import AnalysisPlan, OutputPolicy
    from analytics.hub import Contribution, hub_report
    from ilp.exchange import STOP, FolderTransport
    from ilp.packages import open_package

    plan = AnalysisPlan(policy=OutputPolicy(threshold, threshold, protect=protect))
    contributions = []
    for folder in packages:
        manifest, site, rows = open_package(folder, trust, plan)
        rounds = FolderTransport(live / manifest.centre_id) if live and rows is None else None
        contributions.append(Contribution(manifest.centre_id, site, rows, f"{manifest.kind} from {manifest.snapshot}, "
                                          f"ilp-cohort {manifest.software}", rounds))
        typer.echo(f"verified {manifest.centre_id}: {manifest.kind}, {len(manifest.files)} files, signed")
    centres = [c.centre_id for c in contributions]
    if len(set(centres)) < len(centres):
        raise ConfigError(f"more than one package per centre: {', '.join(sorted(centres))}; give the newest only")
    try:
        result = hub_report(contributions, out, plan)
    finally:
        for contribution in contributions:
            if contribution.live is not None:
                contribution.live(STOP)  # the centre's `ilp serve` may end
    typer.echo(f"report: {result.report}")
