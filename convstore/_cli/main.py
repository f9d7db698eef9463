"""The ``convstore`` command: migrations, a look at sessions and retries, import, purge, demo.

Each subcommand is one async function taking the parsed arguments and returning the exit status
(in `commands`). Errors convstore raises on purpose become one line on standard error and exit
status 1; usage errors exit with 2, as argparse does.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence

from convstore._cli.parser import Handler, build_parser
from convstore.exceptions import ConvstoreError


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return asyncio.run(handler(args))
    except ConvstoreError as exc:
        print(f"convstore: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("convstore: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (say, `| head`) is gone: stop quietly, and keep Python's exit quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
