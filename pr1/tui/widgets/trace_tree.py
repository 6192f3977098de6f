"""A parallel-thinking trace as a tree: main text, each `<Parallel>` block a collapsible whose paths sit
side by side (or stacked) and fold one by one, and the block's summary below it.

`TraceView.show(text)` can be called again and again while a trace streams in: it parses the text with
`pr1.format.parse` (which accepts unfinished text) and updates the widgets in place, so the paths grow
live and what the user folded stays folded."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Collapsible, Static

from pr1.format import Block, PathNode, SummaryNode, Trace, parse


def _words(text: str) -> str:
    n = len(text.split())
    return f"{n} word{'s' if n != 1 else ''}"


class MainText(Static):
    """A run of main text between blocks (blank runs are hidden)."""

    def set_text(self, text: str) -> None:
        text = text.strip("\n")
        self.display = bool(text.strip())
        self.update(Content(text))


class PathView(Collapsible):
    """One path of a block, collapsible on its own."""

    def __init__(self, number: int, node: PathNode):
        self.number = number
        self.body = Static(classes="path-body")
        super().__init__(self.body, title="", collapsed=False, classes="path")
        self.set_node(node)

    def set_node(self, node: PathNode) -> None:
        self.title = f"Path {self.number} · {_words(node.text)}" + ("" if node.closed else " …")
        self.body.update(Content(node.text.strip()))


class SummaryView(Static):
    def set_node(self, node: SummaryNode) -> None:
        self.border_title = "Summary" + ("" if node.closed else " …")
        self.update(Content(node.text.strip()))


class BlockView(Vertical):
    """A `<Parallel>` block: its paths in a collapsible, then its summary (outside it, so that a folded
    block reads as its summary)."""

    def __init__(self, number: int, block: Block, *, live: bool = False, unfinished: str = "writing"):
        super().__init__(classes="block")
        self.number = number
        self.live = live
        self.unfinished = unfinished
        self.path_views = [PathView(i + 1, p) for i, p in enumerate(block.paths)]
        self.paths_box = Horizontal(*self.path_views, classes="paths")
        # live: a block folds into its summary once it closes (also one that arrives closed)
        self.fold = Collapsible(
            self.paths_box, title="", collapsed=live and block.closed, classes="block-fold"
        )
        self.summary = SummaryView(classes="summary")
        self.closed = block.closed
        self._apply_titles(block)

    def compose(self) -> ComposeResult:
        yield self.fold
        yield self.summary

    def _apply_titles(self, block: Block) -> None:
        n = len(block.paths)
        state = "" if block.closed else f" · {self.unfinished}"
        self.fold.title = f"Parallel block {self.number} · {n} path{'s' if n != 1 else ''}{state}"
        if block.summary is not None:
            self.summary.set_node(block.summary)
        self.summary.display = block.summary is not None

    async def set_block(self, block: Block, unfinished: str) -> None:
        self.unfinished = unfinished
        paths = block.paths
        for view, node in zip(self.path_views, paths, strict=False):
            view.set_node(node)
        new = [PathView(i + 1, p) for i, p in enumerate(paths[len(self.path_views) :], len(self.path_views))]
        if new:
            self.path_views += new
            await self.paths_box.mount_all(new)
        if self.live and block.closed and not self.closed:
            self.fold.collapsed = True  # the paths fold into the summary as soon as the block closes
        self.closed = block.closed
        self._apply_titles(block)

    def set_collapsed(self, collapsed: bool) -> None:
        self.fold.collapsed = collapsed
        if not collapsed:
            for view in self.path_views:
                view.collapsed = False


class TraceView(VerticalScroll):
    """The tree of one trace; call `show(text)` with the full text so far."""

    stacked: reactive[bool] = reactive(False)

    def __init__(self, *, live: bool = False, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.live = live
        self.text = ""
        self._source: str | Trace = ""
        self._unfinished = "writing"
        self._parts: list[MainText | BlockView] = []
        self._syncing = False
        self._reset = False

    def watch_stacked(self, stacked: bool) -> None:
        self.set_class(stacked, "-stacked")

    def show(self, source: str | Trace, *, reset: bool = False, unfinished: str = "writing") -> None:
        """Display a trace: its text (tags written literally, finished or not) or a Trace being built
        (`LiveTrace.trace()`); cheap to call per streamed chunk. `reset`: another trace, so forget
        what was folded and scroll back to the top. `unfinished`: what the title of a block that is not
        closed says (`writing` while it streams; once it has ended, why: `stopped`, `truncated`)."""
        self._source = source
        self._unfinished = unfinished
        self.text = source if isinstance(source, str) else source.render()
        self._reset = self._reset or reset
        if not self._syncing:
            self._syncing = True
            self.call_later(self._sync)

    @property
    def settled(self) -> bool:
        """Whether the widgets show the last `show()` (they update asynchronously)."""
        return not self._syncing

    async def _sync(self) -> None:
        try:
            while True:
                source = self._source
                if self._reset:
                    self._reset = False
                    await self.remove_children()
                    self._parts = []
                    self.scroll_home(animate=False)
                await self._apply(parse(source).parts if isinstance(source, str) else source.parts)
                if self._source is source and not self._reset:
                    return
        finally:
            self._syncing = False

    async def _apply(self, parts: list[str | Block]) -> None:
        keep = 0
        for widget, part in zip(self._parts, parts, strict=False):
            if isinstance(part, str) and isinstance(widget, MainText):
                widget.set_text(part)
            elif isinstance(part, Block) and isinstance(widget, BlockView):
                await widget.set_block(part, self._unfinished)
            else:
                break
            keep += 1
        if keep < len(self._parts):
            await self.remove_children(self._parts[keep:])
            del self._parts[keep:]
        if keep < len(parts):
            n_blocks = sum(isinstance(w, BlockView) for w in self._parts)
            new: list[MainText | BlockView] = []
            for part in parts[keep:]:
                if isinstance(part, str):
                    w = MainText(classes="main")
                    w.set_text(part)
                else:
                    n_blocks += 1
                    w = BlockView(n_blocks, part, live=self.live, unfinished=self._unfinished)
                new.append(w)
            self._parts += new
            await self.mount_all(new)

    @property
    def blocks(self) -> list[BlockView]:
        return [w for w in self._parts if isinstance(w, BlockView)]

    def set_blocks_collapsed(self, collapsed: bool) -> None:
        for block in self.blocks:
            block.set_collapsed(collapsed)
