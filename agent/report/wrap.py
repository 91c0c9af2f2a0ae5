"""Line breaking by display width for text that mixes Chinese and Latin script.

rich breaks lines only at spaces, so a Chinese sentence (which has none) is one long "word" that a table cell
cuts off with an ellipsis. Here a line may break between any two CJK characters (each is two cells wide) and at
spaces; a Latin word, a path or a command is kept whole unless it is wider than the line; and the usual
Chinese line-breaking rules hold: a closing mark (，。、：；）》 …) never starts a line and an opening mark (（《“ …)
never ends one.
"""

from __future__ import annotations

import unicodedata

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, JustifyMethod, OverflowMethod
from rich.containers import Lines
from rich.measure import Measurement
from rich.text import Text

# closing marks stay with what precedes them, opening marks with what follows
CLOSING = set("，。、；：！？）】》」』〉”’…％·,.;:!?)]}")
OPENING = set("（【《「『〈“‘([{")


def _wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def units(text: str) -> list[tuple[int, int, bool]]:
    """The pieces a line may not be broken inside: (start, end, is_space). A CJK character is a piece of its
    own, a run of other non-space characters is one piece, marks attach to their neighbour."""
    out: list[list[int]] = []  # [start, end, is_space]
    pending_open: int | None = None
    for i, ch in enumerate(text):
        if ch.isspace():
            if out and out[-1][2] and pending_open is None:
                out[-1][1] = i + 1
            else:
                out.append([i, i + 1, 1])
            pending_open = None
            continue
        if ch in CLOSING and out and not out[-1][2]:
            out[-1][1] = i + 1
            continue
        if pending_open is not None:  # the piece that began with an opening mark takes this character
            out[-1][1] = i + 1
            pending_open = i if ch in OPENING else None
            continue
        if ch in OPENING:
            out.append([i, i + 1, 0])
            pending_open = i
            continue
        latin_run = out and not out[-1][2] and not _wide(ch) and not _wide(text[out[-1][1] - 1])
        if latin_run:
            out[-1][1] = i + 1
        else:
            out.append([i, i + 1, 0])
    return [(s, e, bool(sp)) for s, e, sp in out]


def line_breaks(text: str, width: int) -> list[int]:
    """Offsets where ``text`` (one line) breaks so that no line is wider than ``width`` cells."""
    breaks: list[int] = []
    used = 0
    content = False
    for start, end, space in units(text):
        if space:
            used += cell_len(text[start:end])  # trailing spaces are stripped, they may overflow
            continue
        w = cell_len(text[start:end])
        if content and used + w > width:
            breaks.append(start)
            used, content = 0, False
        if w > width:  # wider than a line by itself: fold it by cells
            for i in range(start, end):
                cw = cell_len(text[i])
                if used and used + cw > width:
                    breaks.append(i)
                    used = 0
                used += cw
            content = True
            continue
        used += w
        content = True
    return breaks


class WrappedText(Text):
    """A rich Text that wraps Chinese by display width (see the module docstring)."""

    def wrap(self, console: Console, width: int, *, justify: JustifyMethod | None = None,
             overflow: OverflowMethod | None = None, tab_size: int = 8, no_wrap: bool | None = None) -> Lines:
        wrap_overflow: OverflowMethod = overflow or self.overflow or "fold"
        lines = Lines()
        for line in self.split(allow_blank=True):
            if "\t" in line:
                line.expand_tabs(tab_size)
            pieces = Lines([line]) if no_wrap else line.divide(line_breaks(line.plain, width))
            for piece in pieces:
                piece.rstrip_end(width)
                piece.rstrip()
                piece.truncate(width, overflow=wrap_overflow)
            lines.extend(pieces)
        return lines

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        plain = self.plain
        widest_line = max((cell_len(line) for line in plain.splitlines()), default=0)
        widest_unit = max((cell_len(plain[s:e]) for s, e, space in units(plain) if not space), default=0)
        return Measurement(min(widest_unit, widest_line), widest_line)
