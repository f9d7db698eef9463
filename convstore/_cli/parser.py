"""The command line's arguments: global options and one subparser per subcommand."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from convstore._cli.arguments import (
    DEFAULT_URL,
    DEMO_URL,
    SCHEMA_VARIABLE,
    URL_VARIABLE,
    count,
    point_in_time,
    positive,
)
from convstore._validate import DEFAULT_MAX_MESSAGES

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def _command(target: str) -> Handler:
    """The handler ``module.function`` of `convstore._cli.commands`, imported when it runs, so
    that parsing the arguments (and ``--help``) imports no command's dependencies."""
    module_name, function = target.split(".")

    async def handler(args: argparse.Namespace) -> int:
        module = importlib.import_module(f"convstore._cli.commands.{module_name}")
        run: Handler = getattr(module, function)
        return await run(args)

    return handler


def build_parser() -> argparse.ArgumentParser:
    """The command line: global options and one subparser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="convstore",
        parents=[_url_option()],
        description="Manage a convstore database: migrations, sessions, retry statistics, "
        "shared cooldowns, import of old snapshot files, purging old history, and a demo.",
        epilog="Try `convstore demo` first. Times are shown in UTC.",
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version and exit")
    commands = _Commands(parser.add_subparsers(title="commands", metavar="COMMAND", required=True))
    commands.add_migrations()
    commands.add_browsing()
    commands.add_report()
    commands.add_changes()
    commands.add_demo()
    return parser


def _url_option() -> argparse.ArgumentParser:
    url = argparse.ArgumentParser(add_help=False)
    url.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help=f"database URL (default: ${URL_VARIABLE}, else {DEFAULT_URL})",
    )
    _schema_option(url, f"default: ${SCHEMA_VARIABLE}, else the database's default")
    return url


def _schema_option(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--schema",
        default=argparse.SUPPRESS,
        metavar="NAME",
        help=f"PostgreSQL schema holding convstore's tables, created by upgrade ({default})",
    )


class _Commands:
    """Adds the subcommands, each with the --url option and its handler."""

    def __init__(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        self._subparsers = subparsers
        self._url = _url_option()
        self._json = argparse.ArgumentParser(add_help=False)
        self._json.add_argument("--json", action="store_true", help="print one JSON document")

    def _add(
        self, name: str, handler: Handler, summary: str, *, as_json: bool = False
    ) -> argparse.ArgumentParser:
        parents = [self._url, self._json] if as_json else [self._url]
        sub = self._subparsers.add_parser(
            name, parents=parents, help=summary, description=summary + "."
        )
        sub.set_defaults(handler=handler)
        return sub

    def add_migrations(self) -> None:
        """upgrade, downgrade, current, check."""
        sub = self._add(
            "upgrade",
            _command("migrations.upgrade"),
            "create the tables or upgrade them to this convstore's",
        )
        sub.add_argument("revision", nargs="?", default="head", help="target (default: head)")
        sub = self._add(
            "downgrade",
            _command("migrations.downgrade"),
            "downgrade the tables; `base` drops them and their data",
        )
        sub.add_argument("revision", help="target revision, e.g. 0001, -1 or base")
        self._add("current", _command("migrations.current"), "print the database's revision")
        self._add(
            "check",
            _command("migrations.check"),
            "exit with status 1 when the database is behind this convstore",
        )

    def add_browsing(self) -> None:
        """sessions, show, stats, cooldowns."""
        sub = self._add(
            "sessions",
            _command("listing.list_sessions"),
            "list sessions, most recently saved first",
            as_json=True,
        )
        sub.add_argument(
            "--interrupted", action="store_true", help="only interrupted ones, newest first"
        )
        sub.add_argument(
            "--limit", type=count, default=100, metavar="N", help="at most N (default 100; 0: all)"
        )
        sub = self._add(
            "show",
            _command("browse.show"),
            "show one session: state, crash history, last messages",
            as_json=True,
        )
        sub.add_argument("session_id", metavar="SESSION_ID")
        sub.add_argument(
            "--messages",
            type=count,
            default=10,
            metavar="N",
            help="the last N messages (default 10)",
        )
        sub = self._add(
            "stats",
            _command("browse.stats"),
            "retries per operation and error type, interruptions",
            as_json=True,
        )
        _period(sub)
        sub = self._add(
            "cooldowns",
            _command("cooldowns.cooldowns"),
            "list the rate limits cooling down now, for every worker on the database",
            as_json=True,
        )
        sub.add_argument(
            "--limit", type=count, default=100, metavar="N", help="at most N (default 100; 0: all)"
        )

    def add_report(self) -> None:
        """report."""
        sub = self._add(
            "report",
            _command("report.report"),
            "write the retry and crash history as one HTML page of charts",
        )
        _period(sub)
        sub.add_argument(
            "-o",
            "--output",
            type=Path,
            default=Path("report.html"),
            metavar="FILE",
            help="where to write the page (default report.html; - for the standard output)",
        )

    def add_changes(self) -> None:
        """import-json, purge."""
        sub = self._add(
            "import-json",
            _command("changes.import_json"),
            "import snapshot files, one JSON file per session",
        )
        sub.add_argument(
            "directory", type=Path, metavar="DIR", help="folder of <session>.json files"
        )
        sub.add_argument(
            "--max-messages",
            type=positive,
            default=DEFAULT_MAX_MESSAGES,
            metavar="N",
            help=f"keep the newest N messages of each (default {DEFAULT_MAX_MESSAGES})",
        )
        sub = self._add(
            "purge",
            _command("changes.purge"),
            "delete old sessions, retry events and resolved interruptions",
        )
        sub.add_argument(
            "--older-than",
            type=point_in_time,
            required=True,
            metavar="AGE",
            help="delete what is older: an age (30d, 12w) or an ISO time",
        )
        sub.add_argument("--dry-run", action="store_true", help="only say what would be deleted")

    def add_demo(self) -> None:
        """demo, whose --url has a default of its own."""
        sub = self._subparsers.add_parser(
            "demo",
            help="simulate failing LLM calls, a crash and a recovery, then show them",
            description="Simulate an agent whose LLM calls fail and are retried, crash one "
            "session and recover it, then print the tables. The database is left behind.",
        )
        sub.add_argument(
            "--url",
            default=argparse.SUPPRESS,
            help=f"database URL (default: {DEMO_URL}; "
            f"${URL_VARIABLE} is ignored, so the demo never writes to your real database)",
        )
        _schema_option(sub, f"${SCHEMA_VARIABLE} is ignored too")
        sub.set_defaults(handler=_command("changes.demo"))


def _period(sub: argparse.ArgumentParser) -> None:
    """--since and --operation, as stats and report take them."""
    sub.add_argument(
        "--since",
        type=point_in_time,
        metavar="WHEN",
        help="only since then: an age (24h, 7d) or an ISO time (default: all history)",
    )
    sub.add_argument("--operation", metavar="NAME", help="only this operation's retries")


class _Version(argparse.Action):
    """``--version``, which looks the version up only when asked (importlib.metadata is slow
    to import)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        from importlib import metadata

        try:
            version = metadata.version("convstore")
        except metadata.PackageNotFoundError:
            version = "(not installed)"
        parser.exit(message=f"{parser.prog} {version}\n")
