"""``eligibility-svc``: the one command-line entry point (also ``python -m eligibility_svc``).

Every command exits 0 on success; on failure it prints ``code: message`` of the error to stderr and
exits 1 (2 for usage errors, as argparse does).  Commands import their modules lazily so that
``--help`` stays fast and a command never pays for another's imports.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from eligibility_svc.errors import EligibilityError, RequestInvalid
from eligibility_svc.models import EligibilityRequest
from eligibility_svc.settings import Settings, get_settings

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the command, and turn our errors into a message and an exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except EligibilityError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eligibility-svc", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(title="commands")
    _add_serve(commands)
    _add_keys(commands)
    _add_x12(commands)
    _add_sandbox(commands)
    _add_worker(commands)
    return parser


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="the HTTP API (the embedded sandbox default when nothing is configured)")
    serve.add_argument("--host", default=None, help="address to bind (default: ELIG_HOST, else 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port to bind (default: ELIG_PORT, else 8080)")
    serve.set_defaults(handler=_serve)


def _add_keys(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from typing import get_args

    from eligibility_svc.settings import ApiScope

    keys = commands.add_parser("keys", help="API keys")
    sub = keys.add_subparsers(title="keys commands")
    new = sub.add_parser("new", help="make a key: prints the token once and the settings entry (its hash)")
    new.add_argument(
        "--scope", action="append", required=True, choices=get_args(ApiScope), help="repeat for several scopes"
    )
    new.add_argument("--name", required=True, help="who holds the key (kept in the settings, shown in logs)")
    new.set_defaults(handler=_keys_new)


def _add_x12(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    x12 = commands.add_parser("x12", help="build, parse and validate X12 270/271 files")
    sub = x12.add_subparsers(title="x12 commands")
    build = sub.add_parser("build", help="JSON EligibilityRequest -> 005010X279A1 270 on stdout")
    build.add_argument("request", type=Path, help="request JSON file ('-' for stdin)")
    build.add_argument("--control", type=int, default=1, help="control number for ISA13/GS06/ST02 (default 1)")
    build.add_argument("--trace", default=None, help="TRN02 trace number (default: a fresh one)")
    build.set_defaults(handler=_x12_build)
    parse = sub.add_parser("parse", help="271 file -> CoverageSummary JSON on stdout")
    parse.add_argument("file", type=Path)
    parse.add_argument("--request", type=Path, help="the request (or a scenario.json holding one) to answer")
    parse.add_argument("--all", action="store_true", help="print every member's summary as a JSON array")
    parse.set_defaults(handler=_x12_parse)
    validate = sub.add_parser("validate", help="check a 270/271 against 005010X279A1 (non-zero exit on errors)")
    validate.add_argument("file", type=Path)
    validate.add_argument("--ack", type=Path, default=None, help="write the 999 acknowledgment here")
    validate.set_defaults(handler=_x12_validate)


def _add_sandbox(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sandbox = commands.add_parser("sandbox", help="run a simulator of an outside system")
    sub = sandbox.add_subparsers(title="simulators")
    clearinghouse = sub.add_parser("clearinghouse", help="CAQH CORE clearinghouse simulator")
    clearinghouse.add_argument("--port", type=int, default=8081)
    clearinghouse.set_defaults(handler=_sandbox_clearinghouse)
    athena = sub.add_parser("athena", help="athenaNet API simulator (practice 195900, seeded from x12_fixtures)")
    athena.add_argument("--port", type=int, default=8082)
    athena.set_defaults(handler=_sandbox_athena)


def _add_worker(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = commands.add_parser(
        "worker", help="consume batch items and apply queued athenaNet write-backs (needs ELIG_REDIS_URL)"
    )
    worker.add_argument("--metrics-port", type=int, default=9100, help="serve /metrics here (0: off)")
    worker.set_defaults(handler=_worker)
    batch = commands.add_parser("batch", help="pre-visit batches")
    sub = batch.add_subparsers(title="batch commands")
    run = sub.add_parser("run", help="check every appointment of a file (.csv or .jsonl) or of athenaNet")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", type=Path, help="FILE.csv or FILE.jsonl")
    source.add_argument("--athena", action="store_true", help="athenaNet booked appointments --start..--end")
    source.add_argument("--tomorrow", action="store_true", help="athenaNet booked appointments tomorrow")
    run.add_argument("--practice", help="athenaNet practice id (default: the only one configured)")
    run.add_argument("--start", type=date.fromisoformat, help="first day (YYYY-MM-DD)")
    run.add_argument("--end", type=date.fromisoformat, help="last day (YYYY-MM-DD, default: --start)")
    run.add_argument("--department", action="append", default=[], help="athenaNet department id (repeatable)")
    run.add_argument("--no-writeback", action="store_true", help="athenaNet input: do not write verified plans back")
    run.add_argument("--output", type=Path, default=Path("batch-results.jsonl"))
    run.add_argument("--report", type=Path, default=None, help="also write an HTML report here")
    run.add_argument("--no-wait", action="store_true", help="with Redis: enqueue and exit")
    run.set_defaults(handler=_batch_run)


# --- serve and keys ---------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    import asyncio

    from eligibility_svc.api.serve import serve
    from eligibility_svc.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level)
    host = args.host if args.host is not None else settings.host
    port = args.port if args.port is not None else settings.port
    asyncio.run(serve(settings, host, port))
    return 0


def _keys_new(args: argparse.Namespace) -> int:
    from eligibility_svc.security import generate_api_key

    key = generate_api_key(list(dict.fromkeys(args.scope)), name=args.name)
    entry = key.settings.model_dump_json(exclude_defaults=True)
    print(f"token: {key.token}")
    print(f"ELIG_API_KEYS='[{entry}]'")
    print(
        "the token is shown only now: give it to its holder. Only its hash goes into the settings; "
        "add the entry to the JSON list in ELIG_API_KEYS (or in the secrets directory).",
        file=sys.stderr,
    )
    return 0


# --- x12 ------------------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    if str(path) == "-":
        return sys.stdin.read()
    try:
        return path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise RequestInvalid(f"cannot read {path}: {exc.strerror}", details={"path": str(path)}) from exc


def load_request(path: Path) -> EligibilityRequest:
    """A request from a JSON file: either the request itself or a scenario with a ``request`` member."""
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise RequestInvalid(f"{path} is not JSON: {exc.msg} at line {exc.lineno}") from exc
    if isinstance(data, dict) and "request" in data and "payer" not in data:
        data = data["request"]
    return _validated_request(data)


def _validated_request(data: object) -> EligibilityRequest:
    from pydantic import ValidationError

    try:
        return EligibilityRequest.model_validate(data)
    except ValidationError as exc:
        fields = [{"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()]
        text = "; ".join(f"{f['field']}: {f['problem']}" for f in fields)
        raise RequestInvalid(f"the request is not valid: {text}", details={"fields": fields}) from exc


def _x12_build(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from eligibility_svc.x12.build270 import Envelope, build_270, new_trace_number
    from eligibility_svc.x12.inquiry_rules import check_inquiry

    request = load_request(args.request)
    check_inquiry(request, today=date.today())
    settings = get_settings()
    envelope = Envelope.from_settings(settings.x12, control=args.control, created=datetime.now(UTC))
    sys.stdout.write(build_270(request, envelope, args.trace or new_trace_number()))
    return 0


def _x12_parse(args: argparse.Namespace) -> int:
    from eligibility_svc.x12.interpret import interpret, summarize
    from eligibility_svc.x12.parse271 import parse_271
    from eligibility_svc.x12.procedures import load_table

    request = load_request(args.request) if args.request else None
    table = load_table(get_settings().x12.procedure_map_file)
    transactions = parse_271(_read_text(args.file))
    if args.all:
        summaries = [s for tx in transactions for s in interpret(tx, request, table=table)]
        payload = [s.model_dump(mode="json") for s in summaries]
        print(json.dumps(payload, indent=2))
        return 0
    if len(transactions) > 1:
        print(f"note: {len(transactions)} transactions in the file; showing the first (use --all)", file=sys.stderr)
    summary = summarize(transactions[0], request, table=table)
    print(summary.model_dump_json(indent=2))
    return 0


def _x12_validate(args: argparse.Namespace) -> int:
    from eligibility_svc.x12.validate import validate_command

    return validate_command(args.file, args.ack)


# --- sandbox --------------------------------------------------------------------------------------


def _sandbox_athena(args: argparse.Namespace) -> int:
    from eligibility_svc.sandbox.athena import run_sandbox_athena

    run_sandbox_athena(args.port)
    return 0


def _worker(args: argparse.Namespace) -> int:
    import asyncio

    from eligibility_svc.batch.worker import run_worker
    from eligibility_svc.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level)
    asyncio.run(run_worker(settings, metrics_port=args.metrics_port))
    return 0


def _batch_run(args: argparse.Namespace) -> int:
    import asyncio

    from eligibility_svc.batch.command import RunOptions, run_batch

    settings = get_settings()
    source = args.input if args.input is not None else _athena_source(args, settings)
    options = RunOptions(
        output=args.output,
        report=args.report,
        wait=not args.no_wait,
        writeback=args.input is None and not args.no_writeback,
    )
    print(asyncio.run(run_batch(settings, source, options)))
    return 0


def _athena_source(args: argparse.Namespace, settings: Settings) -> Any:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from eligibility_svc.batch.sources import AthenaSource, practice_or_only

    practice = practice_or_only(args.practice, sorted(settings.athena.practices))
    if practice is None:
        raise RequestInvalid("name the athenaNet practice with --practice")
    if args.tomorrow:
        start = datetime.now(ZoneInfo(settings.cache.timezone)).date() + timedelta(days=1)
        end = start
    elif args.start is None:
        raise RequestInvalid("--athena needs --start (and optionally --end)")
    else:
        start, end = args.start, args.end or args.start
    return AthenaSource(practice_id=practice, start=start, end=end, department_ids=args.department)


def _sandbox_clearinghouse(args: argparse.Namespace) -> int:
    from eligibility_svc.sandbox.clearinghouse import run_sandbox_clearinghouse

    run_sandbox_clearinghouse(args.port)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
