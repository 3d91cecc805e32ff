"""What the ``nixery`` commands show while they work, and their summaries.

On a terminal (stderr is a TTY) a live table redraws a few times a second:
one line per image with its state and elapsed time, the totals in its title.
Elsewhere (CI logs, pipes) a line is printed when an image's state changes,
so a log reads as a timeline. The summary goes to stdout either way: the
result, where a script may want it; progress goes to stderr.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Sequence

from rich import box
from rich.console import Console, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from nixery.tracking import Row, State, Tracker

STYLES = {
    State.QUEUED: "dim",
    State.PENDING: "yellow",
    State.RUNNING: "cyan",
    State.BUILT: "green",
    State.CACHED: "blue",
    State.FAILED: "bold red",
}
RESULT_WORDS = {State.BUILT: "built", State.CACHED: "already cached", State.FAILED: "failed"}
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
REFRESH_PER_S = 4
LOG_WIDTH = 200  # columns of tables written to a file or pipe, so nothing is cut


def make_console(stderr: bool = False) -> Console:
    """A console for stdout or stderr; a file or pipe gets wide, unwrapped lines."""
    console = Console(stderr=stderr)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, width=LOG_WIDTH, soft_wrap=True)


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 600 else f"{value / 60:.1f} min"


def _one_line(text: str, limit: int = 160) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def totals(tracker: Tracker) -> str:
    counts = tracker.counts()
    parts = [f"{counts[s]} {s}" for s in State if counts[s]]
    return " · ".join(parts)


def live_table(tracker: Tracker, title: str, height: int) -> RenderableType:
    now = tracker.now()
    frame = SPINNER[int(now * 10) % len(SPINNER)]
    table = Table(
        title=f"{title} — {totals(tracker)} — {_seconds(now - tracker.started)}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        expand=False,
    )
    table.add_column("image", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("build", no_wrap=True, style="dim")
    rows = tracker.rows()
    # Active work first, so it stays visible when the list outgrows the screen.
    rows.sort(key=lambda r: (r.state.final, r.state is State.QUEUED))
    shown = rows[: max(height - 6, 3)]
    for row in shown:
        state = Text(row.state.value, style=STYLES[row.state])
        if row.state in (State.PENDING, State.RUNNING):
            state = Text(f"{frame} {row.state.value}", style=STYLES[row.state])
        elapsed = _seconds(row.elapsed(now)) if row.started is not None else ""
        table.add_row(row.image, state, elapsed, row.build_id)
    if len(rows) > len(shown):
        table.caption = f"… and {len(rows) - len(shown)} more"
    return table


@contextlib.contextmanager
def show_progress(tracker: Tracker, console: Console, title: str) -> Iterator[None]:
    """A live table on a terminal, otherwise one line per state change."""
    if console.is_terminal:
        with Live(
            get_renderable=lambda: live_table(tracker, title, console.size.height),
            console=console,
            refresh_per_second=REFRESH_PER_S,
            transient=True,  # the summary table replaces it
            redirect_stdout=False,
            redirect_stderr=False,
        ):
            yield
        return
    lock = threading.Lock()

    def line(row: Row) -> None:
        elapsed = tracker.now() - tracker.started
        detail = f" ({row.build_id})" if row.build_id else ""
        if row.state is State.FAILED:
            detail += f": {_one_line(row.reason)}"
        with lock:
            console.print(
                f"[{elapsed:7.1f} s] {row.image} {row.state.value}{detail}",
                highlight=False,
                markup=False,
            )

    tracker.changes.append(line)
    try:
        yield
    finally:
        tracker.changes.remove(line)


def summary_table(rows: Sequence[Row], now: float) -> Table:
    table = Table(box=box.SIMPLE_HEAD, title="prebuild summary", title_justify="left")
    table.add_column("image", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("build", no_wrap=True)
    table.add_column("reason")
    for row in rows:
        word = RESULT_WORDS.get(row.state, row.state.value)
        elapsed = _seconds(row.elapsed(now)) if row.state is not State.CACHED else ""
        table.add_row(
            row.image,
            Text(word, style=STYLES[row.state]),
            elapsed,
            row.build_id,
            _one_line(row.reason, 300),
        )
    return table


def summary_line(rows: Sequence[Row]) -> str:
    count: Callable[[State], int] = lambda s: sum(1 for r in rows if r.state is s)  # noqa: E731
    return (
        f"{len(rows)} images: {count(State.BUILT)} built, {count(State.CACHED)} already cached, "
        f"{count(State.FAILED)} failed"
    )


def summary_json(rows: Sequence[Row], now: float) -> str:
    return json.dumps(
        [
            {
                "image": r.image,
                "result": r.state.value,
                "seconds": round(r.elapsed(now), 3),
                "build": r.build_id,
                "reason": r.reason,
            }
            for r in rows
        ],
        indent=2,
    )
