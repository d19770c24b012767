"""The ``promptline`` command: one subcommand per process and task."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import uuid
from typing import Any

from promptline.logs import configure_logging
from promptline.settings import Settings, get_settings


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


SHUTDOWN_TIMEOUT_SECONDS = 30.0
"""How long a serving process drains in-flight requests on SIGTERM."""
SHUTDOWN_MARGIN_SECONDS = 15.0
"""Beyond the drain, for the Kafka flush and the rest: then the parent kills a child."""
SHARED_LIMITS_NEEDED = (
    "--processes {n} needs PROMPTLINE_REDIS_URL: rate limits counted in each process's "
    "memory would let a key make {n} times its limit. Set PROMPTLINE_REDIS_URL, or pass "
    "--limits-per-process to accept that"
)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    processes: int = args.processes or settings.serve_processes
    if processes > 1:
        return _serve_group(settings, processes, args.limits_per_process)
    from aiohttp import web

    from ingest.metrics import EDGE_METRICS
    from promptline.build import hot_path_build
    from promptline.heap import settle_heap
    from promptline.serve_group import Group, join
    from promptline.server import create_app

    async def settled(_app: web.Application) -> None:
        settle_heap()
        logging.getLogger("promptline.server").info("resolve's hot path runs %s", hot_path_build())

    app = create_app(settings)
    app.on_startup.append(settled)  # after the app's resources (the catalog) are built
    group = Group.from_env()  # a child of serve --processes N: share the port, merge /metrics
    if group is not None:
        join(app, group, app[EDGE_METRICS].registry)
    web.run_app(
        app,
        host=settings.listen_host,
        port=settings.listen_port,
        access_log=None,
        print=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
        reuse_port=True if group is not None else None,  # None: as a lone process always did
    )
    return 0


def _serve_group(settings: Settings, processes: int, limits_per_process: bool) -> int:
    """N serving processes on one port (``promptline.supervise``); 2 if limits would not hold."""
    if not settings.redis_url:
        if not limits_per_process:
            print(f"promptline: {SHARED_LIMITS_NEEDED.format(n=processes)}", file=sys.stderr)
            return 2
        logging.getLogger("promptline.server").warning(
            "rate limits count per process: without PROMPTLINE_REDIS_URL each of the %d "
            "processes allows a key its full limit (--limits-per-process)",
            processes,
        )
    from promptline.supervise import supervise

    stop_seconds = SHUTDOWN_TIMEOUT_SECONDS + SHUTDOWN_MARGIN_SECONDS
    return asyncio.run(supervise(processes, stop_seconds))


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _worker(settings: Settings, _args: argparse.Namespace) -> int:
    from promptline.worker import main

    return main(settings)


def _guard(settings: Settings, _args: argparse.Namespace) -> int:
    from guard.service import main

    return main(settings)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from promptline.commands.migrate import TARGETS, run_migrations

    targets = tuple(args.only) if args.only else TARGETS
    asyncio.run(run_migrations(settings, targets))
    return 0


def _admin(settings: Settings, args: argparse.Namespace) -> int:
    from promptline.commands import admin, listings

    command = args.admin_command
    if command == "create-org":
        _print_json(asyncio.run(admin.create_org(settings, args.name, args.plan)))
    elif command == "create-project":
        _print_json(asyncio.run(admin.create_proj(settings, args.org, args.name)))
    elif command == "create-key":
        scopes = [scope.strip() for scope in args.scopes.split(",") if scope.strip()]
        _print_json(asyncio.run(admin.create_key(settings, args.project, scopes, args.name)))
    elif command == "revoke-key":
        _print_json(asyncio.run(admin.revoke_key(settings, uuid.UUID(args.key_id))))
    elif command == "set-plan":
        _print_json(asyncio.run(admin.change_plan(settings, args.org, args.plan)))
    elif command == "set-limits":
        from promptline.commands.served_limits import served_endpoints

        served = served_endpoints(settings)
        _print_json(
            asyncio.run(
                admin.change_limits(
                    settings, args.org, args.limit, args.clear, reset=args.reset, served=served
                )
            )
        )
    elif command == "quickstart":
        _print_json(asyncio.run(admin.quickstart(settings)))
    else:
        print(listings.format_rows(asyncio.run(_listed(settings, args)), args.json))
    return 0


async def _listed(settings: Settings, args: argparse.Namespace) -> list[dict[str, Any]]:
    from promptline.commands import listings

    if args.admin_command == "list-orgs":
        return await listings.list_orgs(settings)
    if args.admin_command == "list-projects":
        return await listings.list_projects(settings, args.org)
    return await listings.list_keys(settings, args.project)


def _stack(settings: Settings, args: argparse.Namespace) -> int:
    from promptline.devstack import stack

    actions = {"up": stack.up, "down": stack.down, "status": stack.status}
    return actions[args.stack_command](settings)


def _dead_letters(settings: Settings, args: argparse.Namespace) -> int:
    from promptline.commands import deadletters

    if args.dead_letters_command == "list":
        listed = asyncio.run(deadletters.list_dead_letters(settings, args.limit))
        deadletters.print_listed(listed, args.json)
    else:
        replayed = asyncio.run(deadletters.replay_dead_letters(settings, args.topic))
        total = sum(replayed.values())
        print(f"replayed {total} dead letter(s)")
        for topic, count in sorted(replayed.items()):
            print(f"  {topic}: {count}")
    return 0


DESCRIPTION = "promptline: one subcommand per process and task (serve, worker, admin...)."
PLANS = ["free", "team", "business"]
ORG_HELP = "organisation id, or its name if no other organisation has it"
PROJECT_HELP = "project id, or its name if no other project has it"


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` starts with the summary its parent lists."""
    return commands.add_parser(name, help=summary, description=summary)


def _admin_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    admin = _command(commands, "admin", "manage organisations, projects and API keys")
    admin.set_defaults(run=_admin)
    admin_commands = admin.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")
    org = _command(admin_commands, "create-org", "create an organisation")
    org.add_argument("--name", required=True, help="the organisation's name")
    org.add_argument("--plan", choices=PLANS, default="free", help="its plan (default free)")
    project = _command(admin_commands, "create-project", "create a project")
    project.add_argument("--org", required=True, help=ORG_HELP)
    project.add_argument("--name", required=True, help="the project's name (unique in its org)")
    key = _command(admin_commands, "create-key", "create an API key (printed once)")
    key.add_argument("--project", required=True, help=PROJECT_HELP)
    key.add_argument(
        "--scopes",
        default="read,write,deploy,ingest",
        help="comma-separated scopes (default read,write,deploy,ingest)",
    )
    key.add_argument("--name", default="", help="a label to tell keys apart in list-keys")
    revoke = _command(admin_commands, "revoke-key", "revoke an API key for good")
    revoke.add_argument("--key-id", required=True, help="the key's id (create-key prints it)")
    plan = _command(admin_commands, "set-plan", "move an organisation to another plan")
    plan.add_argument("--org", required=True, help=ORG_HELP)
    plan.add_argument("--plan", choices=PLANS, required=True, help="the new plan")
    limits = _command(
        admin_commands,
        "set-limits",
        "override an organisation's rate limits or monthly signal quota",
    )
    limits.add_argument("--org", required=True, help=ORG_HELP)
    limits.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="'POST /v1/resolve=2000/second' or 'signals_per_month=500000' (repeatable); "
        "an endpoint the service does not rate-limit is refused, with the valid names",
    )
    limits.add_argument(
        "--clear", action="append", default=[], metavar="NAME", help="drop one override"
    )
    limits.add_argument("--reset", action="store_true", help="drop every override first")
    _command(admin_commands, "quickstart", "local org, project, demo prompt and a fresh key")
    orgs = _command(admin_commands, "list-orgs", "list organisations: ids, names, plans")
    projects = _command(admin_commands, "list-projects", "list projects and their organisations")
    projects.add_argument("--org", help=f"only this organisation's: {ORG_HELP}")
    keys = _command(
        admin_commands, "list-keys", "list API keys: ids, prefixes, scopes (never secrets)"
    )
    keys.add_argument("--project", help=f"only this project's: {PROJECT_HELP}")
    for listing in (orgs, projects, keys):
        listing.add_argument("--json", action="store_true", help="a JSON array, not a table")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with every subcommand."""
    parser = argparse.ArgumentParser(prog="promptline", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = _command(commands, "serve", "run the HTTP service (control plane and edge)")
    serve.set_defaults(run=_serve)
    serve.add_argument(
        "--processes",
        type=_positive,
        metavar="N",
        help="serving processes on the one port (SO_REUSEPORT), each with its own catalog "
        "and producer (default PROMPTLINE_SERVE_PROCESSES, 1); above 1 needs "
        "PROMPTLINE_REDIS_URL for shared rate limits",
    )
    serve.add_argument(
        "--limits-per-process",
        action="store_true",
        help="with --processes above 1 and no Redis: count rate limits in each process",
    )
    _command(commands, "worker", "run a Kafka-to-ClickHouse worker").set_defaults(run=_worker)
    _command(
        commands, "guard", "run the guard of guarded rollouts and the webhook deliverer"
    ).set_defaults(run=_guard)
    migrate = _command(commands, "migrate", "apply store and ClickHouse migrations, create topics")
    migrate.add_argument(
        "--only",
        action="append",
        choices=["store", "clickhouse", "kafka"],
        help="migrate only this (repeatable; default all three)",
    )
    migrate.set_defaults(run=_migrate)
    _admin_parser(commands)

    dead = _command(commands, "dead-letters", "list or replay records workers could not store")
    dead.set_defaults(run=_dead_letters)
    dead_commands = dead.add_subparsers(
        dest="dead_letters_command", required=True, metavar="COMMAND"
    )
    listing = _command(dead_commands, "list", "reason, source and value of each dead letter")
    listing.add_argument("--limit", type=int, default=50, help="most recent N (default 50)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    replay = _command(dead_commands, "replay", "produce dead letters to their source topic")
    replay.add_argument("--topic", help="only this source topic (name or kind, e.g. analytics)")

    stack = _command(commands, "stack", "the local stack without Docker (make up / down)")
    stack.set_defaults(run=_stack)
    stack.add_argument(
        "stack_command",
        choices=["up", "down", "status"],
        help="up: start it (keeps a running stack's key); down: stop it; status: what runs",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``promptline`` console script."""
    args = build_parser().parse_args(argv)
    settings = get_settings()
    if args.command == "stack":
        # The stack speaks to a person; its processes log to their own files.
        configure_logging("WARNING", "text")
    else:
        configure_logging(settings.log_level, settings.log_format)
    try:
        code: int = args.run(settings, args)
    except ValueError as error:
        print(f"promptline: {error}", file=sys.stderr)
        return 2
    return code
