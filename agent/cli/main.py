"""Entry point: parse arguments, dispatch, and turn every error into one line and an exit status."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from agent import __version__
from agent.errors import UserError

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_ERROR)


def command_modules() -> list[ModuleType]:
    from agent.cli import probe, scan

    modules: list[ModuleType] = [scan, probe]
    for name in ("baseline", "netscan", "notice", "remote", "inspect", "record", "agentcmd"):
        try:
            modules.append(__import__(f"agent.cli.{name}", fromlist=["register"]))
        except ModuleNotFoundError as exc:
            if exc.name != f"agent.cli.{name}":
                raise
    return modules


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="precaution", description="Counter-espionage technical precaution inspection (Art. 24-28).")
    parser.add_argument("--version", action="version", version=f"precaution {__version__}")
    parser.add_argument("--debug", action="store_true", help="log details and show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in command_modules():
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.handler(args)
        return code
    except UserError as exc:
        sys.stderr.write(f"precaution: error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("precaution: interrupted\n")
        return 130
    except Exception as exc:  # the last line of defence: no traceback reaches a user unless --debug
        if args.debug:
            raise
        sys.stderr.write(f"precaution: internal error: {type(exc).__name__}: {exc} (run with --debug for details)\n")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
