"""The console and table layouts: every table fits the terminal without losing a label.

A table is given as columns and rows of short strings. It is printed in the widest form
that fits the console: the full table; then the same table with abbreviated headers and
a legend; then one block per row ("stacked"), each value kept whole beside its header.
A cell is never cut, and no line is wider than the console: ``88.3 [80.0-96.7] n=60``
either fits in its column or moves to a stacked line. The console's width is the
terminal's; when output is piped, ``COLUMNS`` if set, else 132 (CI logs are wide).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

PIPED_WIDTH = 132


class _LazyConsole:
    """The stdout Console, created on first use (``harness run --json`` never imports rich)."""

    _real: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(current(), name)


def current() -> Console:
    """The console output goes to; made on first use."""
    if _LazyConsole._real is None:
        from rich.console import Console

        piped = not sys.stdout.isatty()
        width = PIPED_WIDTH if piped and not os.environ.get("COLUMNS", "").isdigit() else None
        _LazyConsole._real = Console(highlight=False, width=width)  # rich reads COLUMNS itself
    return _LazyConsole._real  # type: ignore[no-any-return]


console: Any = _LazyConsole()


@contextmanager
def using(con: Console) -> Iterator[Console]:
    """Print to ``con`` for a while (tests render at fixed widths this way)."""
    old, _LazyConsole._real = _LazyConsole._real, con
    try:
        yield con
    finally:
        _LazyConsole._real = old


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 problem``, ``2 problems``: counts read as a person would write them."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def new_table(*args: Any, **kwargs: Any) -> Table:
    """A rich Table, with rich imported on first use."""
    from rich.table import Table

    return Table(*args, **kwargs)


@dataclass(frozen=True)
class Col:
    """A column: its header, an abbreviation for narrow consoles (explained in a legend),
    alignment, and whether its text may wrap (free text such as a reason; never numbers,
    intervals, ids or labels)."""

    name: str
    short: str | None = None
    justify: Literal["left", "right", "center"] = "left"
    wrap: bool = False


def _table(title: str | None, cols: Sequence[Col], rows: Sequence[Sequence[str]], short: bool) -> Table:
    t = new_table(title=title, title_justify="left", show_edge=False, expand=False)
    for c in cols:
        header = (c.short or c.name) if short else c.name
        t.add_column(escape(header), justify=c.justify, no_wrap=not c.wrap, overflow="fold")
    for r in rows:
        t.add_row(*r)
    return t


def _stacked(title: str | None, cols: Sequence[Col], rows: Sequence[Sequence[str]], width: int) -> list[Any]:
    """One block per row: the first cell as a heading, then "header value" pairs packed
    into lines of at most ``width`` cells, breaking only between pairs (a free-text value
    longer than a line is folded, never cut)."""
    from rich.cells import cell_len
    from rich.text import Text

    out: list[Any] = []
    if title:
        out.append(Text.from_markup(f"[italic]{title}[/]"))
    for r in rows:
        out.append(Text.from_markup(f"[bold]{r[0]}[/]"))
        line: Text | None = None
        for c, cell in zip(cols[1:], r[1:], strict=True):
            if not cell:
                continue
            pair = Text.from_markup(f"{escape(c.name)} {cell}")
            if line is not None and cell_len(line.plain) + 2 + cell_len(pair.plain) <= width:
                line.append(";  ")
                line.append_text(pair)
                continue
            if line is not None:
                out.append(line)
            line = Text("  ")
            line.append_text(pair)
        if line is not None:
            out.append(line)
    for part in out:
        part.overflow = "fold"
    return out


def _cell_widths(text: str) -> tuple[int, int]:
    """(whole width, longest word) of a markup cell, in terminal cells."""
    from rich.cells import cell_len
    from rich.text import Text

    plain = Text.from_markup(text).plain
    lines = plain.splitlines() or [""]
    return max(cell_len(x) for x in lines), max((cell_len(w) for w in plain.split()), default=0)


def needed_width(cols: Sequence[Col], rows: Sequence[Sequence[str]], *, short: bool = False) -> int:
    """The narrowest the table can print with every no-wrap cell whole (free-text columns
    may wrap between words): column contents, one cell of padding each side, and a rule
    between columns (the layout of ``show_edge=False``)."""
    total = 0
    for i, c in enumerate(cols):
        header = (c.short or c.name) if short else c.name
        cells = [_cell_widths(escape(header))] + [_cell_widths(r[i]) for r in rows]
        total += max(max(word for _, word in cells), 8) if c.wrap else max(whole for whole, _ in cells)
    return total + 2 * len(cols) + max(0, len(cols) - 1)


def print_table(title: str | None, cols: Sequence[Col], rows: Sequence[Sequence[str]], *,
                legend: str | None = None, con: Console | None = None) -> None:
    """Print ``rows`` in the widest layout that fits (see the module docstring).

    ``title`` and cells are rich markup (escape data before passing it); ``legend`` is
    printed under any layout and should explain the abbreviations.
    """
    con = con or current()
    if needed_width(cols, rows) <= con.width:
        con.print(_table(title, cols, rows, short=False))
    elif any(c.short for c in cols) and needed_width(cols, rows, short=True) <= con.width:
        con.print(_table(title, cols, rows, short=True))
        legend = "; ".join(f"{c.short}: {c.name}" for c in cols if c.short) + (f". {legend}" if legend else "")
    else:
        for part in _stacked(title, cols, rows, con.width):
            con.print(part)
    if legend:
        con.print(escape(legend), style="dim")
