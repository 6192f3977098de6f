"""A command palette entry for every key binding of an app (ctrl+p), so each action is findable."""

from __future__ import annotations

from functools import partial

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider


class BindingsProvider(Provider):
    def _entries(self) -> list[tuple[str, str, str]]:
        out = []
        for b in self.app.BINDINGS:
            if isinstance(b, Binding) and b.description:
                out.append((b.description, b.action, b.key_display or b.key.split(",")[0]))
        return out

    async def discover(self) -> Hits:
        for title, action, key in self._entries():
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=f"key: {key}")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, action, key in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score, matcher.highlight(title), partial(self.app.run_action, action), help=f"key: {key}"
                )
