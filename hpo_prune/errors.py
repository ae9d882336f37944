"""User-caused errors: one line on stderr, exit status 2. Tracebacks are for bugs only."""
from __future__ import annotations

import argparse
import functools
import sys


class UsageError(Exception):
    """A problem the user caused and can fix. The message names the problem and the fix."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise UsageError(message)


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line and exit status 2 (no usage dump)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def cli_main(main):
    """Wrap a `main(argv)` so a UsageError becomes one stderr line and exit status 2."""

    @functools.wraps(main)
    def wrapper(argv=None):
        try:
            return main(argv)
        except UsageError as err:
            message = " ".join(str(err).split())
            print(f"error: {message}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper
