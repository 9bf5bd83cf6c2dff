"""``loopml loop``: the continuous-training agent, and what it has been doing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from loopml.cli import output

if TYPE_CHECKING:
    from rich.console import Console

    from loopml.entities.monitoring import LoopTask
    from loopml.loop.agent import Agent, Decision
    from loopml.loop.policy import Policy

app = typer.Typer(
    help=(
        "Run the continuous-training agent: monitor alerts and schedules start retrains, gated and rolled out "
        "by the policies a Python module defines with loopml.policy(...)."
    ),
    no_args_is_help=True,
)

STATE_STYLES = {"running": "yellow", "succeeded": "green", "rejected": "magenta", "failed": "red"}


def _load_policies(module: str) -> list[Policy]:
    from loopml.cli.modules import import_user_module
    from loopml.errors import InvalidValueError
    from loopml.loop import clear_policies, registered_policies

    clear_policies()
    import_user_module(module, "policies ")
    found = registered_policies()
    if not found:
        raise InvalidValueError(f"{module!r} defines no policy; call loopml.policy(...) at import time.")
    return found


@app.command("run", help="Run the agent: tick every --interval seconds (or once with --once).")
def run(
    policies: Annotated[str, typer.Option("--policies", "-p", help="Module (or .py file) that calls loopml.policy.")],
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit (for cron or CI).")] = False,
    now: Annotated[bool, typer.Option("--now", help="Retrain every policy now, whatever its triggers say.")] = False,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between passes.")] = 10.0,
    runner: Annotated[str, typer.Option(
        help="Where retrains and scheduled monitor checks run: local (a process pool for checks) or ray.")] = "local",
    check_workers: Annotated[int | None, typer.Option(
        min=1, help="Scheduled monitor checks run side by side on this many workers (default: one a CPU).")] = None,
    stale_after: Annotated[float, typer.Option(help="A running task with no heartbeat for this long is failed.")] = 300.0,
    lease_ttl: Annotated[float | None, typer.Option(
        min=0.0, help="Leader election: with several agents on one store only the holder of a lease this long acts; "
                      "a follower takes over this many seconds after the leader dies. 0 turns election off; "
                      "default 30, or off with --once.")] = None,
) -> None:
    from loopml.loop import Agent
    from loopml.loop.leader import DEFAULT_TTL_S, Leadership
    from loopml.loop.schedule import MonitorScheduler

    if runner not in ("local", "ray"):
        raise typer.BadParameter(f"{runner!r} is not a runner; use local or ray.", param_hint="--runner")
    found = _load_policies(policies)
    out = output.console()
    # policy names, task outcomes and progress messages hold user text (exception messages, paths): never markup
    agent = Agent(found, runner=runner, stale_after_s=stale_after,
                  on_progress=lambda policy, text: out.print(Text.assemble((policy, "bold"), f": {text}")))  # fmt: skip
    out.print(Text(f"loopml loop: {len(found)} polic{'y' if len(found) == 1 else 'ies'} "
                   f"({', '.join(p.name for p in found)}) on {agent.store.url}"))  # fmt: skip
    if now:
        for policy in found:
            _print_decision(out, agent.trigger(policy))
        return
    if lease_ttl is None:
        lease_ttl = 0.0 if once else DEFAULT_TTL_S  # a one-shot run (cron, CI) is serialised by its scheduler
    if lease_ttl > 0:
        agent.leadership = Leadership(agent.store, ttl_s=max(lease_ttl, 0.1))
    agent.monitors = MonitorScheduler(agent.tracking, runner=runner, workers=check_workers, actor=agent.actor,
                                      skip=[p.monitor for p in found if p.monitor is not None])  # fmt: skip
    leading: bool | None = None
    try:
        while True:
            for decision in agent.tick():
                if decision.action != "idle":
                    _print_decision(out, decision)
            leading = _report_leadership(out, agent, leading)
            if once:
                return
            agent.sleep(interval)
    finally:
        agent.monitors.close()
        if agent.leadership is not None:
            agent.leadership.release()


def _report_leadership(out: Console, agent: Agent, was: bool | None) -> bool | None:
    """Print a line when this agent becomes the leader or a follower; the new state."""
    if agent.leadership is None:
        return None
    leading = agent.leadership.leading
    if leading != was:
        lease = agent.leadership.lease if leading else agent.leadership.current()
        holder = lease.holder if lease is not None else "nobody"
        epoch = lease.epoch if lease is not None else 0
        what = "leads" if leading else f"follows {holder}"
        out.print(Text(f"agent {agent.leadership.holder} {what} (lease epoch {epoch})"))
    return leading


def _print_decision(out: Console, decision: Decision) -> None:
    task = decision.task
    if task is None:
        out.print(Text.assemble((decision.policy, "bold"), f": {decision.action} ({decision.detail})"))
        return
    style = STATE_STYLES.get(task.state, "")
    out.print(
        Text.assemble((decision.policy, "bold"), f": task {task.task_id} ", (task.state, style), f": {task.outcome}")
    )


def _trigger(task: LoopTask) -> str:
    """``alert 12``, ``schedule 2026-11-23 09:00:00`` (the ref is epoch ms), ``manual`` or ``manual: REASON``."""
    ref = task.trigger_ref or ""
    if task.trigger == "schedule" and ref.isdigit():
        return f"schedule {output.fmt_time(int(ref))}"
    if task.trigger == "manual":
        return "manual" if ref in ("", "manual") else f"manual: {ref}"
    return f"{task.trigger} {ref}".strip()


@app.command("status", help="Recent continuous-training tasks: state, stage, outcome.")
def status(
    policy: Annotated[str | None, typer.Option("--policy", help="Only this policy.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many tasks.")] = 20,
) -> None:
    import loopml

    store = loopml.get_tracking_client().store
    tasks = store.loop.list_tasks(policy=policy, max_results=limit)
    out = output.console()
    if not tasks:
        out.print("No continuous-training tasks yet. Start the agent with [bold]loopml loop run --policies MODULE[/].")
        return
    running = [t for t in tasks if t.state == "running"]
    out.print(f"{len(running)} in flight, {len(tasks) - len(running)} finished (newest first)")
    table = Table(header_style="bold")
    table.add_column("Task", justify="right", style=output.ID_STYLE)
    table.add_column("Policy", style="bold")
    table.add_column("Trigger")
    table.add_column("State")
    table.add_column("Stage")
    table.add_column("Started", no_wrap=True)
    table.add_column("Took", justify="right")
    table.add_column("Outcome")
    for task in tasks:
        took = (task.finished_at or task.heartbeat_at) - task.started_at
        table.add_row(
            str(task.task_id),
            Text(task.policy),
            Text(_trigger(task)),
            Text(task.state, style=STATE_STYLES.get(task.state, "")),
            Text(task.stage),
            output.fmt_time(task.started_at),
            output.fmt_duration(took),
            Text(output.shorten(task.outcome or "", 90)),
        )
    out.print(table)
