"""Run benchmarks: `python -m bench.run [NAME ...]` (default: all bench_*.py modules).

Each bench/bench_<name>.py defines TITLE and run() -> str (a markdown section with the figures, the reference
tool's figures side by side, and the budget verdict). The section is kept in bench/results/<name>.md and
bench/RESULTS.md is rebuilt from all sections, so benchmarks can be re-run one at a time.
"""

from __future__ import annotations

import datetime as dt
import importlib
import platform
import sys
from pathlib import Path

import psutil

HERE = Path(__file__).parent
RESULTS = HERE / "results"


def available() -> list[str]:
    return sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    mem = psutil.virtual_memory().total / 2**30
    return (f"{psutil.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Linux {platform.release()}, "
            f"Python {platform.python_version()}")


def rebuild() -> None:
    parts = ["# Benchmark results", "",
             "Produced by `make bench` (`python -m bench.run`); each section names its date and machine.", ""]
    for path in sorted(RESULTS.glob("*.md")):
        parts.append(path.read_text(encoding="utf-8").rstrip() + "\n")
    (HERE / "RESULTS.md").write_text("\n".join(parts), encoding="utf-8")


def main(argv: list[str]) -> int:
    names = argv or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available())}", file=sys.stderr)
        return 2
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"== {name}: {module.TITLE}", flush=True)
        body = module.run()
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        section = f"## {module.TITLE}\n\n_{stamp}; {machine()}_\n\n{body.strip()}\n"
        (RESULTS / f"{name}.md").write_text(section, encoding="utf-8")
        print(body, flush=True)
    rebuild()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
