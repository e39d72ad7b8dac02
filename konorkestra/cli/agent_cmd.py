"""``konorkestra agent``: enroll this node (``join``), run it (``run``), inspect it (``status``).

Example::

    konorkestra agent join --center https://10.0.0.5:8443 \\
        --token ab12cd34.Qm9... --ca-pin sha256:9f86d0... --data /var/lib/konorkestra
    konorkestra agent run --data /var/lib/konorkestra --allow-uid 0,1000
    konorkestra agent status --data /var/lib/konorkestra -o json

Exit codes: 0 joined, 1 refused or unreachable (one line saying why), 2 usage.
The token may come from ``KONORKESTRA_JOIN_TOKEN`` instead of the command line,
which keeps it out of the process list.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

DEFAULT_DATA = Path("/var/lib/konorkestra")


@click.group()
def agent() -> None:
    """Enroll and run the node agent."""


@agent.command("join")
@click.option("--center", "center_url", required=True, help="Center URL, e.g. https://host:8443")
@click.option(
    "--token",
    required=True,
    envvar="KONORKESTRA_JOIN_TOKEN",
    help="Join token id.secret (or set KONORKESTRA_JOIN_TOKEN).",
)
@click.option("--ca-pin", required=True, help="sha256:<hex> pin printed with the token.")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA,
    show_default=True,
    help="Agent data directory.",
)
@click.option("--name", default=None, help="Node name (default: bound by the token, else the id).")
def join_cmd(center_url: str, token: str, ca_pin: str, data_dir: Path, name: str | None) -> None:
    """Enroll this node with the Center, pinning its CA by --ca-pin."""
    from konorkestra.agent.identity import IdentityError, join

    if not re.fullmatch(r"sha256:[0-9a-f]{64}", ca_pin.strip().lower()):
        raise click.BadParameter("expected sha256:<64 hex digits>", param_hint="--ca-pin")
    if not center_url.startswith("https://"):
        raise click.BadParameter("the Center URL must start with https://", param_hint="--center")
    try:
        ident = join(center_url, token, ca_pin, data_dir, name=name)
    except IdentityError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    not_after = ident.certificate.not_valid_after_utc.strftime("%Y-%m-%d %H:%M:%SZ")
    click.echo(f"joined as node {ident.node_id} ({ident.name})")
    click.echo(f"groups: {', '.join(ident.groups)}")
    click.echo(f"certificate valid until {not_after}; identity in {ident.paths.root}")


def _uids(text: str | None) -> frozenset[int] | None:
    if text is None:
        return None
    try:
        uids = frozenset(int(u) for u in text.split(",") if u.strip())
    except ValueError:
        raise click.BadParameter("expected UID[,UID...]", param_hint="--allow-uid") from None
    if any(u < 0 for u in uids):
        raise click.BadParameter("uids are non-negative", param_hint="--allow-uid")
    return uids


@agent.command("run")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA,
    show_default=True,
    help="Agent data directory (config file: <data>/agent.toml).",
)
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="UDS path [default: /run/konorkestra/agent.sock as root, else <data>/agent.sock].",
)
@click.option("--allow-uid", "allow_uid", default=None, help="Only these uids may connect: 0,1000")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def run_cmd(
    data_dir: Path, socket_path: Path | None, allow_uid: str | None, log_level: str
) -> None:
    """Run the agent: sync with the Center, serve config on the local socket."""
    import logging

    from konorkestra.agent.config import AgentConfig, ConfigError
    from konorkestra.agent.daemon import Agent, StartupError, run_agent

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = AgentConfig.load(data_dir).with_overrides(
            socket=socket_path, allow_uids=_uids(allow_uid)
        )
        agent_ = Agent.from_data_dir(data_dir, config)
    except (ConfigError, StartupError) as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    try:
        run_agent(agent_)
    except OSError as exc:  # socket in use, unwritable socket directory, ...
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None


@agent.command("status")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA,
    show_default=True,
    help="Agent data directory.",
)
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
@click.option(
    "--wait",
    is_flag=True,
    help="First wait until the agent runs and has a committed release of every group in "
    "its scope (exit 1 after --timeout); for scripts and systemd ExecStartPost=.",
)
@click.option("--timeout", default="60s", show_default=True, help="How long --wait waits.")
def status_cmd(data_dir: Path, output: str, wait: bool, timeout: str) -> None:
    """Show what this node serves (works whether or not the agent runs)."""
    import json
    import time

    from konorkestra.agent.status import collect, render
    from konorkestra.model.durations import DurationError, parse_duration

    try:
        deadline = time.monotonic() + parse_duration(timeout)
    except DurationError as exc:
        raise click.BadParameter(str(exc), param_hint="--timeout") from None
    info = collect(data_dir)
    while wait and not _serving(info):
        if time.monotonic() > deadline:
            click.echo(f"error: the agent is not serving every group after {timeout}", err=True)
            click.echo(render(info), err=True)
            raise SystemExit(1)
        time.sleep(0.2)  # polls files the agent rewrites; no event to wait on
        info = collect(data_dir)
    if output == "json":
        click.echo(json.dumps(info, indent=2, sort_keys=True))
    else:
        click.echo(render(info))


def _serving(info: dict[str, object]) -> bool:
    """The agent runs and every group of its scope has a committed release."""
    groups = info.get("groups")
    return (
        bool(info.get("running"))
        and isinstance(groups, dict)
        and all(g.get("release") for g in groups.values())
    )
