"""What pr1's apps share: every binding in the command palette (ctrl+p), a help screen, and a quit that
asks for a second press while quitting would lose something."""

from __future__ import annotations

from typing import ClassVar

from textual.app import App

from pr1.tui.commands import BindingsProvider
from pr1.tui.widgets.help_screen import HelpScreen

QUIT_ARMED_S = 5  # how long a second press of quit is waited for


class Pr1App(App[None]):
    COMMANDS = App.COMMANDS | {BindingsProvider}
    HELP_MARKDOWN: ClassVar[str] = ""  # the help screen's text, above the list of bindings

    def __init__(self) -> None:
        super().__init__()
        self._quit_armed = False

    def quit_warning(self) -> str | None:
        """What quitting now would lose, as the notice that asks for a second press; None: quit at once."""
        return None

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.HELP_MARKDOWN, self.BINDINGS))

    def action_quit_app(self) -> None:
        warning = self.quit_warning()
        if warning and not self._quit_armed:
            self._quit_armed = True
            self.notify(warning, severity="warning")
            self.set_timer(QUIT_ARMED_S, lambda: setattr(self, "_quit_armed", False))
            return
        self.exit()
