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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lunos", description="Lunos LLM gateway and client")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--config", help="YAML config file (default: lunos.yaml if present)")
    serve.add_argument("--workers", type=int, help="worker processes sharing the port")
    serve.set_defaults(func=_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
