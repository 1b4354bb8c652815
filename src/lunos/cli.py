"""The `lunos` command: thin; every subcommand calls the library."""

from __future__ import annotations

import argparse
import os
import sys


def _serve(args: argparse.Namespace) -> int:
    from .gateway.config import ConfigError, load_settings
    from .gateway.server import serve

    if args.config:
        os.environ["LUNOS_CONFIG"] = args.config
    for flag, env in (("host", "LUNOS_HOST"), ("port", "LUNOS_PORT"), ("workers", "LUNOS_WORKERS")):
        value = getattr(args, flag)
        if value is not None:
            os.environ[env] = str(value)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"lunos: {exc}", file=sys.stderr)
        return 2
    serve(settings)
    return 0


def _store(args: argparse.Namespace):
    from .gateway.config import load_settings
    from .gateway.store import Store

    settings = load_settings(args.config)
    return Store.open(settings.db_url())


async def _with_store(args: argparse.Namespace, action):
    store = _store(args)
    try:
        await store.migrate()
        return await action(store)
    finally:
        await store.close()


def _keys(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from .gateway.routes.logs import parse_time

    if args.keys_command == "create":
        async def action(store):
            return await store.create_key(
                args.name, budget_usd=args.budget, rpm=args.rpm, tpm=args.tpm,
                allowed_models=args.models.split(",") if args.models else None,
                expires_at=parse_time(args.expires, "expires") if args.expires else None,
            )

        row, raw = asyncio.run(_with_store(args, action))
        print(json.dumps({**row, "key": raw}, indent=2))
        print("Store the key now: it is not shown again.", file=sys.stderr)
        return 0
    if args.keys_command == "list":
        rows = asyncio.run(_with_store(args, lambda store: store.list_keys()))
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        print(f"{'ID':<22} {'NAME':<20} {'PREFIX':<17} {'SPEND USD':>10} {'BUDGET':>8}  STATUS")
        for r in rows:
            status = "revoked" if r["revoked_at"] else "active"
            budget = "-" if r["budget_usd"] is None else f"{r['budget_usd']:g}"
            print(f"{r['id']:<22} {r['name'][:20]:<20} {r['prefix']:<17} "
                  f"{r['spend_usd']:>10.4f} {budget:>8}  {status}")
        return 0
    row = asyncio.run(_with_store(args, lambda store: store.revoke_key(args.id)))
    if row is None:
        print(f"lunos: no key {args.id}", file=sys.stderr)
        return 1
    print(f"revoked {row['id']} ({row['name']})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lunos", description="Lunos LLM gateway and client")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--config", help="YAML config file (default: lunos.yaml if present)")
    serve.add_argument("--workers", type=int, help="worker processes sharing the port")
    serve.set_defaults(func=_serve)

    keys = sub.add_parser("keys", help="manage API keys (straight on the database)")
    keys.add_argument("--config", help="YAML config file")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key (shown once)")
    create.add_argument("--name", required=True)
    create.add_argument("--budget", type=float, help="budget in USD")
    create.add_argument("--rpm", type=int, help="requests per minute")
    create.add_argument("--tpm", type=int, help="tokens per minute")
    create.add_argument("--models", help="comma list of allowed model ids")
    create.add_argument("--expires", help="expiry: ISO 8601 time or unix seconds")
    listing = keys_sub.add_parser("list", help="list keys (prefixes only)")
    listing.add_argument("--json", action="store_true")
    revoke = keys_sub.add_parser("revoke", help="revoke a key")
    revoke.add_argument("id")
    keys.set_defaults(func=_keys)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
