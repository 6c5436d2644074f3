"""The progress displays: Rich's (imported only when a terminal shows it) and plain log lines."""

from __future__ import annotations

import io

from rich.console import Console

from conduit_core.observe.progress import LogProgress, RichProgress


def test_the_rich_display_counts_rows_per_resource() -> None:
    out = io.StringIO()
    progress = RichProgress(Console(file=out, force_terminal=True, width=120))
    progress.start("orders", 10)
    progress.advance("orders", 4)
    progress.advance("orders", 6)
    progress.finish("orders", "success")
    progress.close()
    assert "orders" in out.getvalue()
    assert "10/10" in out.getvalue()


def test_log_lines_name_the_resource_and_its_rows() -> None:
    out = io.StringIO()
    progress = LogProgress(out, interval=0.0)
    progress.start("orders", None)
    progress.advance("orders", 1_500)
    progress.finish("orders", "success")
    lines = out.getvalue().splitlines()
    assert lines[0] == "[orders] started"
    assert lines[1].startswith("[orders] 1,500 rows,")
    assert lines[2].startswith("[orders] success: 1,500 rows in ")
