"""``konorctl rollouts`` and ``konorctl rollout status|approve|pause|resume|abort|promote``.

Example::

    konorctl rollouts                                  # every Group's current rollout
    konorctl rollout status checkout --watch           # redraw until it ends; exit 0 completed
    konorctl rollout approve checkout --reason "canary clean for 10m"
    konorctl rollout abort checkout --reason "p99 up"  # rolls back with a new signed Release
    konorctl rollout promote checkout --yes            # skip the rest: every node, now

Invariants:

* Exit codes: 0 done, 1 the Center refused (a command that cannot apply in the
  rollout's phase is a 409, printed with the rollout's phase now), is
  unreachable, or ``--watch`` saw the rollout end rolled back or aborted;
  2 usage errors (``promote`` without ``--yes`` sends nothing).
* A command is ``POST /v1/rollouts/{group}/{command}``: the Center queues it
  for the one runner that drives rollouts and answers with the rollout after
  it applied (200), or ``202`` when another Center drives them (it applies
  there; this command then only says it was queued).
* ``--watch`` polls ``GET /v1/rollouts/{group}``: it follows the Group's
  current rollout, so a newer Release that supersedes the watched one is
  watched next; it returns once the phase is ``completed``, ``rolled_back`` or
  ``aborted``. On a terminal it redraws with ``rich.live``; piped, it prints
  one line per change (never the same line twice in a row: a change the
  line does not show waits for one it does) and the full status at the end;
  with ``-o json`` only
  the final status (one JSON document).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import click
from rich.console import Console

from konorkestra.cli.client import CenterClient, CenterError
from konorkestra.cli.output import center_options, client, console, output_format, print_json
from konorkestra.cli.rollout_view import (
    ENDED,
    Status,
    outcome_line,
    rollouts_table,
    status_view,
    step_of,
    summary,
)
from konorkestra.cli.watch import INTERVAL

INTERRUPTED = 130
"""Exit code of ``--watch`` stopped with Ctrl-C (128 + SIGINT), as shells report it."""


def _path(group: str, command: str | None = None) -> str:
    base = f"/v1/rollouts/{quote(group, safe='')}"
    return base if command is None else f"{base}/{command}"


@click.command("rollouts")
@center_options
def rollouts(center: str | None, token: str | None, output: str) -> None:
    """Show every Group's current rollout, one line each.

    \b
    Columns: the Release being rolled out (its id holds its sequence:
    <group>-<seq>-<digest>), the phase (waving, baking, awaiting approval,
    paused, completed, rolled back, aborted), the step k/n of the Policy,
    nodes targeted with the new Release of the Group's enrolled nodes, the
    bake time left, and why the rollout paused or rolled back; -o wide adds
    the stable Release it started from, the Policy, and when it started and
    last changed. `konorctl rollout status GROUP` shows one rollout in full.

    \b
    Examples:
      konorctl rollouts
      konorctl rollouts -o wide
      konorctl rollouts -o yaml
    """
    with client(center, token) as c:
        items: list[dict[str, Any]] = c.get("/v1/rollouts")["rollouts"]
    if output == "json":
        print_json(items)
        return
    out = console()
    if not items:
        out.print("no rollouts (no Group has a Release yet)")
        return
    out.print(rollouts_table(items, wide=output_format() == "wide"))


@click.group("rollout")
def rollout() -> None:
    """See and steer the progressive rollout of a Group's latest Release.

    Every Release of a Group is rolled out by the Group's Policy: waves of
    nodes (each step's percent of the enrolled nodes), a bake after each
    wave, guards that must pass (acks, error rate, p99 latency, stale nodes),
    and with `approval: manual` an operator's approve before every wave after
    the first (the canary). A breach rolls back with a new signed Release of
    the stable content, or pauses (the Policy's onFailure). Semantics:
    docs/guide/rollouts.md.

    Commands are recorded in the audit log with your token's name and
    --reason (`konorctl audit`). Exit codes: 0 done, 1 the Center refused
    (e.g. the command does not apply in the rollout's phase) or is
    unreachable, 2 usage errors.

    \b
    Examples:
      konorctl rollout status checkout --watch
      konorctl rollout approve checkout --reason "canary clean for 10m"
      konorctl rollout abort checkout --reason "p99 up"
    """


@rollout.command("status")
@center_options
@click.argument("group")
@click.option("--watch", is_flag=True, help="Redraw until the rollout ends (see above).")
@INTERVAL
def status(
    center: str | None, token: str | None, output: str, group: str, watch: bool, interval: float
) -> None:
    """Show the rollout of GROUP's latest Release in full.

    \b
    * waves: percent, state (done/current/pending), nodes, how many committed
      the new Release, processes that applied it or failed to, stale nodes;
    * nodes targeted with the new Release and nodes on the stable one;
    * the clock: bake time left, or time left before the wave deadline;
    * each guard's current value against its threshold (breach in red);
    * who approved which step; why it paused or rolled back; the rollback
      Release; Releases it superseded; earlier rollouts of the Group.

    \b
    --watch redraws every --interval seconds until the rollout ends, then exits:
      0  the rollout completed
      1  it was rolled back or aborted (or the Center could not be asked)
      130  you pressed Ctrl-C
    It follows the Group: a newer Release superseding the watched one is watched
    next. Piped, it prints a line per change and the full status at the end;
    with -o json it prints only the final status. Without --watch the exit code
    is 0 whatever the phase. -o json prints the API's JSON.

    \b
    Examples:
      konorctl rollout status checkout
      konorctl rollout status checkout --watch --interval 2
    """
    with client(center, token) as c:
        current: Status = c.get(_path(group))
        if not watch:
            _show(current, output)
            return
        code = _watch(lambda: c.get(_path(group)), current, interval, output)
    click.get_current_context().exit(code)


def _show(current: Status, output: str) -> None:
    if output == "json":
        print_json(current)
    else:
        Console().print(status_view(current))


def _change(s: Status) -> tuple[Any, ...]:
    """What a piped ``--watch`` prints a line for (not the clocks counting down)."""
    waves = tuple((w["state"], w["nodes"], w["committed"], w["applied"], w["failed"], w["stale"])
                  for w in s["waves"])  # fmt: skip
    guards = tuple((g["signal"], g["status"]) for g in s["guards"])
    return (s["release"]["id"], s["phase"], s["step"], s["reason"], tuple(s["nodes"].values()),
            waves, guards)  # fmt: skip


def _watch(fetch: Callable[[], Status], current: Status, interval: float, output: str) -> int:
    """Poll until the rollout ends; its exit code (:data:`ENDED`, or :data:`INTERRUPTED`)."""
    console = Console()
    try:
        if output == "json":
            while current["phase"] not in ENDED:
                time.sleep(interval)
                current = fetch()
            print_json(current)
        elif console.is_terminal:
            from rich.live import Live

            with Live(status_view(current), console=console, auto_refresh=False) as live:
                while current["phase"] not in ENDED:
                    time.sleep(interval)
                    current = fetch()
                    live.update(status_view(current), refresh=True)
        else:
            last: tuple[Any, ...] | None = None
            said = ""
            while True:
                line = f"{current['group']}: {summary(current)}"
                if _change(current) != last and line != said:  # never the same line twice
                    last, said = _change(current), line
                    click.echo(f"{time.strftime('%H:%M:%S')} {line}")
                if current["phase"] in ENDED:
                    break
                time.sleep(interval)
                current = fetch()
            console.print(status_view(current))
    except KeyboardInterrupt:
        return INTERRUPTED
    return ENDED[current["phase"]]


# -- the five commands ----------------------------------------------------------------------

_PAST = {"approve": "approved", "pause": "paused", "resume": "resumed", "abort": "aborted",
         "promote": "promoted"}  # fmt: skip


def _now(c: CenterClient, group: str) -> str:
    """`` — checkout is now baking, step 2/3`` (empty if the Center cannot say)."""
    try:
        s = c.get(_path(group))
    except CenterError:
        return ""
    return f" — {group} is now {s['phase']}, step {step_of(s)}"


def steer(
    center: str | None, token: str | None, output: str, group: str, kind: str, reason: str | None
) -> None:
    """Send ``kind`` for GROUP's rollout and print what it did."""
    body = {"reason": reason} if reason else {}
    with client(center, token) as c:
        try:
            answer: dict[str, Any] = c.post(_path(group, kind), body)
        except CenterError as exc:
            # A 409 (client.py ends API errors with "[code, HTTP status]"): the engine's
            # reason names the phase it saw; add the phase now, which may have moved.
            if "HTTP 409]" not in exc.message:
                raise
            raise CenterError(exc.message + _now(c, group)) from None
    if output == "json":
        print_json(answer)
        return
    if "queued" in answer:
        click.echo(
            f"{kind} queued (command {answer['queued']}) for the Center that drives rollouts, "
            f"not this one; `konorctl rollout status {group}` shows when it applied"
        )
        return
    click.echo(f"{_PAST[kind]} the rollout of {group}: {summary(answer)}")
    more = outcome_line(answer)
    if more:
        click.echo(more)


_EPILOG = (
    "The Center applies the command within seconds and prints the rollout after it "
    "(exit 0); a command that does not apply in the rollout's phase is refused with "
    "the reason and the phase (exit 1). --reason is kept with your name in the audit log."
)
_REASON = click.option("--reason", default=None, help="Why; recorded in the audit log.")


def _command(kind: str, doc: str) -> click.Command:
    """``konorctl rollout KIND GROUP [--reason TEXT]``, with ``doc`` as its help."""

    @rollout.command(kind, help=doc, epilog=_EPILOG)
    @center_options
    @click.argument("group")
    @_REASON
    def run(center: str | None, token: str | None, output: str, group: str,
            reason: str | None) -> None:  # fmt: skip
        steer(center, token, output, group, kind, reason)

    return run


_command(
    "approve",
    """Approve the next wave of GROUP's rollout.

    Only when it is awaiting approval: a Policy with `approval: manual` stops
    before every step after the first (the canary) once the wave before has
    baked with every guard passing. The next wave starts at once.

    \b
    Example:
      konorctl rollout approve checkout --reason "canary clean for 10m"
    """,
)
_command(
    "pause",
    """Pause GROUP's rollout where it is.

    No node is added or taken away, guards are not read, the bake and
    wave-deadline clocks stop. Nodes that took the new Release keep it.
    Continue with `resume`; `abort` or `promote` also leave a pause.

    \b
    Example:
      konorctl rollout pause checkout --reason "investigating p99"
    """,
)
_command(
    "resume",
    """Resume GROUP's paused rollout.

    It goes back to the phase it paused in: a wave gets a fresh 10-minute
    deadline, a bake keeps the time it had left, an approval wait waits again.
    Guards are read again at once, so a breach found now still rolls back
    (or pauses, per the Policy's onFailure).

    \b
    Example:
      konorctl rollout resume checkout --reason "false alarm"
    """,
)
_command(
    "abort",
    """Abort GROUP's rollout and roll it back.

    The Center signs a new rollback Release with the stable Release's content
    (and a higher sequence, so agents accept it) and sends it to every node
    that took the aborted Release; other nodes keep the stable one. A Group's
    first Release has nothing to roll back to: it ends `aborted` and nodes keep
    what they have.

    \b
    Example:
      konorctl rollout abort checkout --reason "p99 up"
    """,
)


@rollout.command("promote", epilog=_EPILOG)
@center_options
@click.argument("group")
@_REASON
@click.option("--yes", is_flag=True, help="Confirm: skip every remaining safety step.")
def promote(
    center: str | None, token: str | None, output: str, group: str, reason: str | None, yes: bool
) -> None:
    """Finish GROUP's rollout now, skipping what is left (needs --yes).

    Every enrolled node is sent the new Release at once; the remaining waves,
    bakes, approvals and guard checks are skipped and the rollout completes.
    Use it when you are sure; nothing will roll it back automatically.

    \b
    Example:
      konorctl rollout promote checkout --yes --reason "hotfix, verified"
    """
    if not yes:
        raise click.UsageError(
            f"promote sends the new Release to every node of {group} now, skipping the "
            "remaining waves, bakes, approvals and guards; add --yes to do it"
        )
    steer(center, token, output, group, "promote", reason)
