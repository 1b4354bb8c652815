"""The `lunos` command: thin; every subcommand calls the library.

`serve` and `keys` work on the gateway and its database (the `gateway` extra); `chat`,
`models` and `logs` talk to a running gateway through the SDK alone, configured by
LUNOS_BASE_URL and LUNOS_API_KEY.
"""

from __future__ import annotations

import argparse
import json
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
        serve(load_settings(args.config))
    except ConfigError as exc:
        print(f"lunos: {exc}", file=sys.stderr)
        return 2
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

    from .gateway.params import parse_time

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


# --- client commands: a running gateway, through the SDK ---------------------------------


class _Fail(Exception):
    """A one-line message for stderr; the command exits 1."""


def _client():
    from . import Lunos

    if not os.environ.get("LUNOS_API_KEY"):
        raise _Fail("set LUNOS_API_KEY to a gateway key (the master key, or one made with "
                    "`lunos keys create --name NAME`)")
    return Lunos()


def _describe(exc: Exception) -> str:
    from . import APIConnectionError, APIStatusError

    if isinstance(exc, APIStatusError):
        text = f"{exc.status_code} {exc.message}"
        if exc.param:
            text += f" (param: {exc.param})"
    elif isinstance(exc, APIConnectionError) and exc.request is not None:
        root = f"{exc.request.url.scheme}://{exc.request.url.netloc.decode()}"
        text = f"cannot reach the gateway at {root} (LUNOS_BASE_URL): {exc.message}"
    else:
        text = str(exc)
    return " ".join(text.split())


def _client_command(action):
    """Run `action(args)`; SDK errors become one line on stderr and exit status 1."""

    def run(args: argparse.Namespace) -> int:
        from . import LunosError

        try:
            return action(args)
        except (_Fail, LunosError) as exc:
            print(f"lunos: {_describe(exc)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130

    return run


def _chat(args: argparse.Namespace) -> int:
    messages = [{"role": "system", "content": args.system}] if args.system else []
    messages.append({"role": "user", "content": args.prompt})
    with _client() as client:
        if not args.stream:
            r = client.chat.completions.create(model=args.model, messages=messages)
            print(r.choices[0].message.content or "")
            return 0
        started = False
        try:
            with client.chat.completions.create(
                model=args.model, messages=messages, stream=True
            ) as stream:
                for chunk in stream:
                    for choice in chunk.choices:
                        if choice.index == 0 and choice.delta.content:
                            sys.stdout.write(choice.delta.content)
                            sys.stdout.flush()
                            started = True
        finally:
            if started:  # end the partial line, even when the stream failed
                print(flush=True)
        if not started:
            print()
        return 0


class _Progress:
    """A spinner with the seconds waited on stderr while a slow call runs (a plain start
    line when stderr is not a terminal); cleared when the call ends."""

    FRAMES = "|/-\\"

    def __init__(self, label: str) -> None:
        import threading

        self.label = label
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._tty = sys.stderr.isatty()

    def _spin(self) -> None:
        import time

        started, frame = time.monotonic(), 0
        while not self._done.wait(0.1):
            sys.stderr.write(f"\r{self.FRAMES[frame % 4]} {self.label} {time.monotonic() - started:.1f}s")
            sys.stderr.flush()
            frame += 1

    def __enter__(self) -> _Progress:
        if self._tty:
            self._thread.start()
        else:
            print(f"{self.label}...", file=sys.stderr, flush=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        if self._tty:
            self._thread.join()
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _image(args: argparse.Namespace) -> int:
    with _client() as client:
        with _Progress(f"generating an image with {args.model}"):
            result = client.images.generate(model=args.model, prompt=args.prompt, size=args.size,
                                            n=args.n if args.n > 1 else None)
        paths = [args.output] if len(result.data) == 1 else [
            f"{os.path.splitext(args.output)[0]}-{i + 1}{os.path.splitext(args.output)[1]}"
            for i in range(len(result.data))]
        for path, image in zip(paths, result.data, strict=True):
            if image.b64_json is None and image.url and not image.url.startswith("data:"):
                print(f"{image.url} (the provider gave a URL: not saved)")
                continue
            data = image.bytes()
            with open(path, "wb") as out:
                out.write(data)
            print(f"saved {path} ({len(data)} bytes)")
        cost = result.usage.cost if result.usage else None
        if cost is not None:
            print(f"cost: ${cost:g}", file=sys.stderr)
    return 0


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        print("  ".join(cells).rstrip())


def _models(args: argparse.Namespace) -> int:
    with _client() as client:
        models = client.models.list()
    if args.json:
        print(models.model_dump_json(indent=2))
        return 0
    rows = [[m.id, m.provider or "-", f"{m.context_length or '-'}", f"{m.max_output_tokens or '-'}",
             _money(m.pricing.input if m.pricing else None),
             _money(m.pricing.output if m.pricing else None)] for m in models]
    _table(["MODEL", "PROVIDER", "CONTEXT", "MAX OUT", "IN $/M", "OUT $/M"], rows, {2, 3, 4, 5})
    return 0


def _logs(args: argparse.Namespace) -> int:
    rows = []
    with _client() as client:
        cursor = None
        while len(rows) < args.n:
            page = client.logs.list(limit=min(args.n - len(rows), 500), cursor=cursor)
            rows += page.data
            if not page.has_more:
                break
            cursor = page.next_cursor
    if args.json:
        print(json.dumps([row.model_dump(mode="json") for row in rows], indent=2))
        return 0
    table = []
    for row in rows:
        usage = row.usage
        created = str(row.created_at or "-")[:19].replace("T", " ")
        table.append([
            created, row.id, row.endpoint or "-", row.model or "-",
            row.app_id or "-", f"{row.status}",
            f"{usage.total_tokens}" if usage and usage.total_tokens is not None else "-",
            "-" if not usage or usage.cost is None else f"{usage.cost:.6f}",
            "-" if row.latency_ms is None else f"{row.latency_ms:.0f}",
        ])
    _table(["CREATED (UTC)", "ID", "ENDPOINT", "MODEL", "APP", "STATUS", "TOKENS", "COST $", "MS"],
           table, {5, 6, 7, 8})
    return 0


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("must be a whole number >= 1")
    return int(text)


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

    chat = sub.add_parser("chat", help="ask a model through a running gateway")
    chat.add_argument("model", help="provider/model, e.g. openai/gpt-4o")
    chat.add_argument("prompt")
    chat.add_argument("--stream", action="store_true", help="print the answer as it arrives")
    chat.add_argument("--system", help="a system message")
    chat.set_defaults(func=_client_command(_chat))
    image = sub.add_parser("image", help="generate an image through a running gateway")
    image.add_argument("prompt")
    image.add_argument("-o", "--output", default="image.png", help="file to write (default image.png)")
    image.add_argument("-m", "--model", default="openai/gpt-image-1",
                       help="an image model (default openai/gpt-image-1)")
    image.add_argument("--size", help="e.g. 1024x1024, 1536x1024, 1024x1536")
    image.add_argument("-n", type=_positive, default=1, help="how many images (numbered files)")
    image.set_defaults(func=_client_command(_image))
    models = sub.add_parser("models", help="list the gateway's models and prices")
    models.add_argument("--json", action="store_true")
    models.set_defaults(func=_client_command(_models))
    logs = sub.add_parser("logs", help="your most recent requests, newest first")
    logs.add_argument("-n", type=_positive, default=20, help="how many (default 20)")
    logs.add_argument("--json", action="store_true")
    logs.set_defaults(func=_client_command(_logs))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ModuleNotFoundError as exc:
        if args.command not in ("serve", "keys") or (exc.name or "").startswith("lunos"):
            raise
        print(f"lunos: `lunos {args.command}` needs the gateway's packages ({exc.name} is "
              'missing): pip install "lunos[gateway]"', file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
