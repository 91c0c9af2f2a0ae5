"""`precaution-collector`: until the collector is built, it tells the truth about that and exits 2."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from collector import __version__

PLANNED = ("serve", "init", "migrate", "notice issue", "token create")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["-V"]):
        print(f"precaution-collector {__version__}")
        return 0
    if args in (["--help"], ["-h"]):
        print("usage: precaution-collector --version\n\nThe collector (" + ", ".join(PLANNED) + ") is not part of "
              "this release yet; agents work stand-alone (precaution scan, baseline, netscan, remote, record).")
        return 0
    print("precaution-collector: error: the collector is not part of this release yet "
          f"(planned commands: {', '.join(PLANNED)})", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
