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


def _serve(settings: Settings, _args: argparse.Namespace) -> int:
    from aiohttp import web

    from promptline.build import hot_path_build
    from promptline.heap import settle_heap
    from promptline.server import create_app

    async def settled(_app: web.Application) -> None:
        settle_heap()
        logging.getLogger("promptline.server").info("resolve's hot path runs %s", hot_path_build())

    app = create_app(settings)
    app.on_startup.append(settled)  # after the app's resources (the catalog) are built
    web.run_app(
        app,
        host=settings.listen_host,
        port=settings.listen_port,
        access_log=None,
        print=None,
        shutdown_timeout=30,
    )
    return 0


def _worker(settings: Settings, _args: argparse.Namespace) -> int:
    from workers.service import main

    return main(settings)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from promptline.commands.migrate import TARGETS, run_migrations

    targets = tuple(args.only) if args.only else TARGETS
    asyncio.run(run_migrations(settings, targets))
    return 0


def _admin(settings: Settings, args: argparse.Namespace) -> int:
    from promptline.commands import admin

    if args.admin_command == "create-org":
        _print_json(asyncio.run(admin.create_org(settings, args.name, args.plan)))
    elif args.admin_command == "create-project":
        _print_json(asyncio.run(admin.create_proj(settings, uuid.UUID(args.org), args.name)))
    elif args.admin_command == "create-key":
        scopes = [scope.strip() for scope in args.scopes.split(",") if scope.strip()]
        _print_json(
            asyncio.run(admin.create_key(settings, uuid.UUID(args.project), scopes, args.name))
        )
    elif args.admin_command == "revoke-key":
        _print_json(asyncio.run(admin.revoke_key(settings, uuid.UUID(args.key_id))))
    elif args.admin_command == "set-plan":
        _print_json(asyncio.run(admin.change_plan(settings, uuid.UUID(args.org), args.plan)))
    elif args.admin_command == "set-limits":
        try:
            changed = asyncio.run(
                admin.change_limits(
                    settings, uuid.UUID(args.org), args.limit, args.clear, reset=args.reset
                )
            )
        except ValueError as error:
            print(f"promptline admin set-limits: {error}", file=sys.stderr)
            return 2
        _print_json(changed)
    elif args.admin_command == "quickstart":
        _print_json(asyncio.run(admin.quickstart(settings)))
    return 0


def _stack(settings: Settings, args: argparse.Namespace) -> int:
    from promptline.commands import stack

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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with every subcommand."""
    parser = argparse.ArgumentParser(prog="promptline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP service (control plane and edge)").set_defaults(
        run=_serve
    )
    commands.add_parser("worker", help="run a Kafka-to-ClickHouse worker").set_defaults(run=_worker)
    migrate = commands.add_parser(
        "migrate", help="apply store and ClickHouse migrations, create topics"
    )
    migrate.add_argument("--only", action="append", choices=["store", "clickhouse", "kafka"])
    migrate.set_defaults(run=_migrate)

    admin = commands.add_parser("admin", help="manage organisations, projects and API keys")
    admin.set_defaults(run=_admin)
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    org = admin_commands.add_parser("create-org", help="create an organisation")
    org.add_argument("--name", required=True)
    org.add_argument("--plan", choices=["free", "team", "business"], default="free")
    project = admin_commands.add_parser("create-project", help="create a project")
    project.add_argument("--org", required=True, help="organisation id")
    project.add_argument("--name", required=True)
    key = admin_commands.add_parser("create-key", help="create an API key (printed once)")
    key.add_argument("--project", required=True, help="project id")
    key.add_argument("--scopes", default="read,write,deploy,ingest")
    key.add_argument("--name", default="")
    revoke = admin_commands.add_parser("revoke-key", help="revoke an API key for good")
    revoke.add_argument("--key-id", required=True, help="the key's id (create-key prints it)")
    plan = admin_commands.add_parser("set-plan", help="move an organisation to another plan")
    plan.add_argument("--org", required=True, help="organisation id")
    plan.add_argument("--plan", choices=["free", "team", "business"], required=True)
    limits = admin_commands.add_parser(
        "set-limits", help="override an organisation's rate limits or monthly signal quota"
    )
    limits.add_argument("--org", required=True, help="organisation id")
    limits.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="'POST /v1/resolve=2000/second' or 'signals_per_month=500000' (repeatable)",
    )
    limits.add_argument(
        "--clear", action="append", default=[], metavar="NAME", help="drop one override"
    )
    limits.add_argument("--reset", action="store_true", help="drop every override first")
    admin_commands.add_parser("quickstart", help="local org, project, demo prompt and a fresh key")

    dead = commands.add_parser(
        "dead-letters", help="list or replay records workers could not store"
    )
    dead.set_defaults(run=_dead_letters)
    dead_commands = dead.add_subparsers(dest="dead_letters_command", required=True)
    listing = dead_commands.add_parser("list", help="reason, source and value of each dead letter")
    listing.add_argument("--limit", type=int, default=50, help="most recent N (default 50)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    replay = dead_commands.add_parser("replay", help="produce dead letters to their source topic")
    replay.add_argument("--topic", help="only this source topic (name or kind, e.g. analytics)")

    stack = commands.add_parser("stack", help="the local stack without Docker (make up / down)")
    stack.set_defaults(run=_stack)
    stack.add_argument("stack_command", choices=["up", "down", "status"])
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
