"""README and docs/: every relative link and anchor resolves, and README stays a front door."""

import re
import sys
from pathlib import Path

import pytest

from conftest import REPO

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def markdown_files():
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def without_code(text: str) -> str:
    """The text with fenced code blocks and inline code removed (links there are not links)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a file's headings: lower case, punctuation dropped, spaces to -."""
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    slugs = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        slugs.add(slug)
    return slugs


def test_every_relative_link_and_anchor_resolves():
    broken = []
    for path in markdown_files():
        for target in LINK.findall(without_code(path.read_text(encoding="utf-8"))):
            if re.match(r"[a-z]+:", target):
                continue  # an absolute URL: not checked offline
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                broken.append(f"{path.name}: {target} (no such file)")
            elif anchor and anchor not in anchors(linked):
                broken.append(f"{path.name}: {target} (no such heading)")
    assert not broken, broken


def test_the_link_check_finds_a_broken_link_and_anchor(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [bad](#nope) [gone](missing.md)\n")
    targets = LINK.findall(without_code(page.read_text()))
    assert targets == ["#title", "#nope", "missing.md"]
    assert anchors(page) == {"title"}


def test_readme_is_a_front_door_and_docs_cover_every_topic():
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= 300
    topics = {"training", "generation", "serving", "devices", "scaling", "layer", "api"}
    assert topics | {"performance"} <= {p.stem for p in (REPO / "docs").glob("*.md")}
    for path in markdown_files():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\bissue \d+|this round", text, flags=re.I), path.name


@pytest.mark.skipif(
    sys.version_info[:2] != (3, 11), reason="argparse lays out help differently per Python"
)
def test_the_command_reference_is_the_parsers_own_help(monkeypatch):
    # docs/commands.md is every command's --help: every flag is documented, and every
    # flag it shows exists. `python3 scripts/command_reference.py` rewrites it.
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    monkeypatch.setenv("COLUMNS", "100")
    from command_reference import reference

    page = (REPO / "docs" / "commands.md").read_text(encoding="utf-8")
    assert page == reference(), "docs/commands.md is out of date: run scripts/command_reference.py"
    for flag in ("--init-from SOURCE", "--items {lines,paragraphs}", "--checkpoint", "--out"):
        assert flag in page
