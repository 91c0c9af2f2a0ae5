"""Entry point: parse arguments, dispatch, and turn every error into one line and an exit status."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from agent import __version__
from agent.errors import UserError

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: `--version` stays without typing and probes
if TYPE_CHECKING:
    from probes.i18n import Localized

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_ERROR)


# Command name -> (module, one-line help). Only the chosen command's module is imported, so that
# `precaution --version` or `precaution record verify` do not pay for pydantic models or probes.
COMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("agent.cli.scan", "run a local self-inspection against the profile"),
    "baseline": ("agent.cli.baseline", "capture the known-good state and report drift from it"),
    "netscan": ("agent.cli.netscan", "test networks: discovery, ports, services, link (Art. 24(2))"),
    "remote": ("agent.cli.remote", "inspect agentless hosts over SSH under a notice (Art. 24(3))"),
    "inspect": ("agent.cli.inspect", "on-site inspection by two or more named inspectors (Art. 25)"),
    "notice": ("agent.cli.notice", "issue, verify and acknowledge notices of remote testing (Art. 25)"),
    "record": ("agent.cli.record", "verify or show the inspection record (Art. 25)"),
    "probe": ("agent.cli.probe", "list probes or run one and show its observations"),
    "agent": ("agent.cli.agent", "run the agent daemon, enrol it with a collector, or show its status"),
}


def command_modules(only: str | None = None) -> list[ModuleType]:
    names = [only] if only in COMMANDS else list(COMMANDS)
    return [importlib.import_module(COMMANDS[name][0]) for name in names if only is None or name == only]


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The first word that names a command (options before it take no values)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = _Parser(prog="precaution",
                     description="Counter-espionage technical precaution inspection (Art. 24-28).")
    parser.add_argument("--version", action="version", version=f"precaution {__version__}")
    parser.add_argument("--debug", action="store_true", help="log details and show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    chosen = _chosen_command(argv)
    for name, (_, help_text) in COMMANDS.items():
        if name != chosen:
            sub.add_parser(name, help=help_text)  # listed in --help; never dispatched (not chosen)
    if chosen:
        for module in command_modules(chosen):
            module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s")
    from probes.errors import ProbeInputError  # here, not at the top: --version stays light

    try:
        from agent.state import StateDir

        # The one place the environment decides where state lives; everything below gets the object.
        args.state = StateDir.from_environment()
        code: int = args.handler(args)
        return code
    except (UserError, ProbeInputError) as exc:  # a probe's input error is the user's, like ours
        sys.stderr.write(error_line(exc, getattr(args, "lang", "en")) + "\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        from agent import messages as msg

        sys.stderr.write(_in(msg.INTERRUPTED(), getattr(args, "lang", "en")) + "\n")
        return 130
    except Exception as exc:  # the last line of defence: no traceback reaches a user unless --debug
        if args.debug:
            raise
        from agent import messages as msg

        line = msg.INTERNAL_ERROR(error=f"{type(exc).__name__}: {exc}")
        sys.stderr.write(_in(line, getattr(args, "lang", "en")) + "\n")
        return EXIT_ERROR
    finally:
        _show_record_warnings(getattr(args, "lang", "en"))


def _show_record_warnings(lang: str) -> None:
    """Breaks and key changes the record wrote during this run: said once, on stderr, whatever the output."""
    record = sys.modules.get("agent.record")
    for warning in getattr(record, "WARNINGS", ()):
        sys.stderr.write(_in(warning, lang) + "\n")
    if record is not None:
        record.WARNINGS.clear()


def _in(text: Localized, lang: str) -> str:
    return f"{text.get('en')}\n{text.get('zh-CN')}" if lang == "both" else text.get(lang)


def error_line(exc: Exception, lang: str) -> str:
    """One line (two with --lang both) in the command's language."""
    zh = f"precaution：错误：{exc.text('zh-CN') if isinstance(exc, UserError) else exc}"
    en = f"precaution: error: {exc.text('en') if isinstance(exc, UserError) else exc}"
    return {"zh-CN": zh, "both": f"{en}\n{zh}"}.get(lang, en)


if __name__ == "__main__":
    sys.exit(main())
