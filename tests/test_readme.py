"""README.md reads true: each command's synopsis equals its `--help` (the real click command), the first
paragraph says what was measured where as long as docs/GPU.md has no GPU results, and the docs it lists are
the docs there are.

A synopsis is a code block without a language whose first line starts with `pr1`; each of its lines that
starts with `pr1` begins the synopsis of one command, indented lines continue it. Its notation:
`[--flag VALUE]` an optional flag and its default (a value in capitals: no fixed default), `--flag VALUE`
without brackets a required one, `[--flag]` a switch that is off by default, `[--on|--off]` a pair of
switches, the default first; positional arguments in capitals (`[NAME …]` optional, `…` repeatable).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.main

import pr1.cli
from pr1.datasets import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
HELP = {"--help", "-h"}
PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_=]*(\.[a-z]+)?")  # N, FILE.jsonl, KEY=VALUE, RUN_DIR
TOKEN = re.compile(r"--[\w-]+(?:\|--[\w-]+)+|[\[\]()|]|[^\s\[\]()|]+")


def commands() -> dict[str, object]:
    """Every command of the app by its name after `pr1` ("" for `pr1` itself, "data build", ...)."""
    found: dict[str, object] = {}

    def walk(cmd: object, name: str) -> None:
        found[name] = cmd
        for sub_name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{name} {sub_name}".strip())

    walk(typer.main.get_command(pr1.cli.app), "")
    return found


COMMANDS = commands()


def code_blocks(text: str) -> list[tuple[str, list[str]]]:
    """The fenced code blocks of a markdown text: (info string, lines)."""
    blocks: list[tuple[str, list[str]]] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("```"):
            if not inside:
                blocks.append((line[3:].strip(), []))
            inside = not inside
        elif inside:
            blocks[-1][1].append(line)
    return blocks


def synopses(text: str) -> dict[str, list[str]]:
    """{command name: [synopsis text after the command's name, ...]} of the synopsis blocks of a markdown
    text."""
    found: dict[str, list[str]] = {}
    for info, lines in code_blocks(text):
        if info or not lines or not lines[0].startswith("pr1"):
            continue
        for line in lines:
            if line.startswith("pr1"):
                words, name = line.split()[1:], ""
                while words and f"{name} {words[0]}".strip() in COMMANDS:
                    name = f"{name} {words.pop(0)}".strip()
                found.setdefault(name, []).append(" ".join(words))
            elif line.strip():
                found[name][-1] += " " + line.strip()
    return found


@dataclass
class Shown:
    """One flag (or pair of switches) as a synopsis shows it."""

    names: tuple[str, ...]
    value: str | None
    optional: bool  # inside [ ]


def parse(synopsis: str) -> tuple[list[Shown], list[tuple[str, bool]]]:
    """The flags of a synopsis, and its positional words with whether each is inside [ ]."""
    tokens = TOKEN.findall(synopsis)
    flags: list[Shown] = []
    positional: list[tuple[str, bool]] = []
    depth, i = 0, 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "[":
            depth += 1
        elif tok == "]":
            depth -= 1
        elif tok.startswith("-"):
            value = None
            nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
            if nxt and nxt not in "[]()|" and not nxt.startswith("-") and nxt != "…":
                value, i = nxt, i + 1
            flags.append(Shown(tuple(tok.split("|")), value, depth > 0))
        elif tok not in "()|…" and not tok.endswith("…"):
            positional.append((tok, depth > 0))
        i += 1
    return flags, positional


def same_default(shown: str, default: object) -> bool:
    if isinstance(default, bool):
        return False
    if isinstance(default, (int, float)):
        try:
            return float(shown) == float(default)
        except ValueError:
            return False
    if isinstance(default, Path):
        return Path(shown) == default
    return shown == str(default)


def problems(name: str, synopsis: str) -> list[str]:
    """What differs between the synopsis of command `name` and the command itself (empty: they agree)."""
    command = COMMANDS[name]
    options = [p for p in command.params if p.param_type_name == "option" and not set(p.opts) & HELP]
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    flags, positional = parse(synopsis)
    out: list[str] = []
    by_name = {n: p for p in options for n in (*p.opts, *p.secondary_opts)}
    shown = {n for f in flags for n in f.names}
    out += [f"{n}: in the command, not in the synopsis" for n in sorted(set(by_name) - shown)]
    out += [f"{n}: in the synopsis, not in the command" for n in sorted(shown - set(by_name))]
    for f in flags:
        params = {id(by_name[n]): by_name[n] for n in f.names if n in by_name}
        if len(params) != 1:
            continue  # unknown, reported above, or two different options written as a pair
        p = next(iter(params.values()))
        label = "|".join(f.names)
        if p.is_flag:
            if f.value is not None:
                out.append(f"{label}: a switch, shown with the value {f.value!r}")
            if not f.optional:
                out.append(f"{label}: a switch, shown as required")
            if p.secondary_opts:
                on, off = p.opts[0], p.secondary_opts[0]
                expected = (on, off) if p.default else (off, on)
                if f.names != expected:
                    out.append(f"{label}: expected [{'|'.join(expected)}] (the default first)")
            elif len(f.names) != 1:
                out.append(f"{label}: one switch shown as a pair")
            continue
        if f.value is None:
            out.append(f"{label}: takes a value, shown without one")
            continue
        if p.required and f.optional:
            out.append(f"{label}: required, shown in [ ]")
        if p.default is None or p.multiple:
            if not PLACEHOLDER.fullmatch(f.value):
                out.append(
                    f"{label}: has no default, shown with {f.value!r} (write a placeholder in capitals)"
                )
        elif not same_default(f.value, p.default):
            out.append(f"{label}: default {p.default!r}, shown as {f.value!r}")
        elif not f.optional:
            out.append(f"{label}: has a default ({p.default!r}), shown as required")
    if name:  # `pr1 COMMAND [ARGS …]` shows the group's own arguments, not a command's
        required = [a for a in arguments if a.required]
        bare = [w for w, optional in positional if not optional]
        if len(bare) != len(required):
            out.append(f"positional arguments: {len(required)} required, the synopsis shows {bare}")
        if any(not a.required for a in arguments) and not any(optional for _, optional in positional):
            out.append("an optional positional argument is not shown in [ ]")
        if any(a.nargs == -1 for a in arguments) and "…" not in synopsis:
            out.append("a repeatable argument is shown without …")
    return out


README_SYNOPSES = synopses(README.read_text(encoding="utf-8"))


def test_every_command_has_one_synopsis():
    assert set(README_SYNOPSES) >= set(n for n, c in COMMANDS.items() if not hasattr(c, "commands") or not n)
    assert all(len(s) == 1 for s in README_SYNOPSES.values()), {n: s for n, s in README_SYNOPSES.items()}


@pytest.mark.parametrize("name", sorted(README_SYNOPSES), ids=lambda n: n or "pr1")
def test_synopsis_equals_help(name):
    assert name in COMMANDS, f"README shows `pr1 {name}`, which is no command"
    assert problems(name, README_SYNOPSES[name][0]) == []


def test_the_check_fails_on_a_wrong_synopsis():
    eval_ = README_SYNOPSES["eval"][0]
    assert "[--seed 0]" in eval_
    assert problems("eval", eval_.replace("[--seed 0]", "")) == [
        "--seed: in the command, not in the synopsis"
    ]
    assert problems("eval", eval_.replace("[--seed 0]", "[--seed 1]")) == ["--seed: default 0, shown as '1'"]
    assert problems("eval", eval_ + " [--no-such-flag]") == [
        "--no-such-flag: in the synopsis, not in the command"
    ]
    assert problems("eval", eval_.replace("[--tui]", "[--tui 1]")) == [
        "--tui: a switch, shown with the value '1'"
    ]
    assert problems("eval", eval_.replace("[--limit N]", "[--limit 5]"))[0].startswith(
        "--limit: has no default"
    )
    sft = README_SYNOPSES["sft"][0]
    assert problems("sft", sft.replace("--out RUN_DIR", "[--out RUN_DIR]")) == [
        "--out: required, shown in [ ]"
    ]
    pair = "[--gradient-checkpointing|--no-gradient-checkpointing]"
    assert problems("sft", sft.replace(pair, "[--no-gradient-checkpointing|--gradient-checkpointing]"))
    assert problems("export", "RUN_DIR --out DIR [--merge] [--dtype auto]") == [
        "--trust-remote-code: in the command, not in the synopsis"
    ]
    assert problems("export", "--out DIR [--merge] [--dtype auto] [--trust-remote-code]")[0].startswith(
        "positional arguments"
    )


def first_paragraph(text: str) -> str:
    body = text.split("\n\n", 1)[1]  # after the title
    return " ".join(body.split("\n\n", 1)[0].split())


def test_the_first_paragraph_says_what_was_measured_where():
    gpu = (ROOT / "docs" / "GPU.md").read_text(encoding="utf-8")
    latest = gpu.split("## Latest results", 1)[1].strip()
    first = first_paragraph(README.read_text(encoding="utf-8"))
    assert "2-core CPU" in first and "135M" in first
    # no GPU run yet: the README must say so, and that GPU figures are estimates
    if latest.startswith("Pending"):
        assert "no GPU path has run yet" in first and "estimate" in first
    else:  # GPU results arrived: the first paragraph must stop saying there are none
        assert "no GPU path has run yet" not in first


def test_the_documentation_list_is_the_docs_folder():
    text = README.read_text(encoding="utf-8")
    listed = set(re.findall(r"\]\(docs/([A-Z_]+\.md)\):", text.split("## Documentation", 1)[1]))
    assert listed == {p.name for p in (ROOT / "docs").glob("*.md")}


def test_no_doc_points_outside_the_repository():
    for doc in [README, ROOT / "examples" / "README.md", *(ROOT / "docs").glob("*.md")]:
        assert "../shared" not in doc.read_text(encoding="utf-8"), doc


def test_datasets_doc_names_every_registry_dataset_and_its_hub_id():
    text = (ROOT / "docs" / "DATASETS.md").read_text(encoding="utf-8")
    for spec in REGISTRY.values():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{spec.name}` |")), None)
        assert row is not None, spec.name
        assert (f"`{spec.hub_id}`" if spec.hub_id else "none") in row, row
        assert all(f"`{f}`" in row for f in spec.files), row


def test_the_docs_synopses_are_the_readmes():
    """A doc that repeats a command's synopsis (a synopsis block with a `[--flag]` in it) repeats it exactly."""
    seen = 0
    for doc in sorted((ROOT / "docs").glob("*.md")):
        for info, lines in code_blocks(doc.read_text(encoding="utf-8")):
            if info or not lines or not lines[0].startswith("pr1") or "[--" not in "\n".join(lines):
                continue
            for name, shown in synopses("```\n" + "\n".join(lines) + "\n```\n").items():
                seen += 1
                expected = [" ".join(s.split()) for s in README_SYNOPSES.get(name, [])]
                assert [" ".join(s.split()) for s in shown] == expected, f"{doc.name}: pr1 {name}"
    assert seen >= 5  # data (3), eval, rl, chat, watch
