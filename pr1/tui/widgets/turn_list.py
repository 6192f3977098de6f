"""`pr1 chat`'s turns, one under the other, following the latest: while the user has not scrolled up from the
end, the end stays in view when the latest turn grows and when the screen is resized."""

from __future__ import annotations

from textual.containers import VerticalScroll


class TurnList(VerticalScroll):
    following = True  # the end is in view (the user has not scrolled up from it)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self.following = new >= self.max_scroll_y - 1

    def on_resize(self) -> None:
        # sent when the widget's size or its content's size changes, on the new layout (the scroll position
        # is still the old one, so `following` says where the user was)
        if self.following:
            self.scroll_end(animate=False)

    def show_end(self) -> None:
        """Scroll to the end and follow it again (a new turn, even when the user had scrolled up)."""
        self.following = True
        self.scroll_end(animate=False)
