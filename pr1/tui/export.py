"""`pr1 watch --export DIR RUN…`: the dashboard's charts as CSV and its screens as SVG, without a terminal
(for papers and CI).

It runs the dashboard itself headless (Textual's `App.run(headless=True)`, a virtual screen of `size`
cells), so the pictures are exactly what `pr1 watch` shows and the CSVs exactly what its charts draw: for
each tab that has something to show (curves, stages or summaries; GRPO health; all metrics), that tab's
CSV files and `<tab>.svg`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pr1.errors import Pr1Error
from pr1.runs import read_run_info

EXPORT_SIZE = (160, 48)  # columns, rows of the virtual screen: every chart of a group fits


def export_runs(
    run_dirs: Sequence[str | Path], out_dir: str | Path, *, size: tuple[int, int] = EXPORT_SIZE
) -> list[Path]:
    """Write the dashboard of `run_dirs` (overlaid in this order) into `out_dir`; returns the files
    written. A folder without a readable run.json is a Pr1Error (before anything is written)."""
    from pr1.tui.watch_app import WatchApp

    if not run_dirs:
        raise Pr1Error("--export: give at least one run folder")
    for d in run_dirs:
        read_run_info(d)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise Pr1Error(f"--export {out}: exists and is not a folder")
    app = WatchApp(list(run_dirs), poll_interval=3600)
    written: list[Path] = []
    failure: list[BaseException] = []

    async def shoot(pilot) -> None:  # noqa: ANN001
        try:
            await pilot.pause()
            for tab in app.export_tabs():
                app.action_tab(tab)
                await pilot.pause()
                await pilot.pause(
                    0.1
                )  # the charts of a tab shown for the first time are laid out, then drawn
                written.extend(app.export_tab(out, tab))
        except BaseException as e:  # noqa: BLE001 - re-raised below, after the app has closed
            failure.append(e)
        finally:
            app.exit()

    app.run(headless=True, size=size, auto_pilot=shoot)
    if failure:
        raise failure[0]
    return written
