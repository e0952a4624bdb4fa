"""README and docs/: every relative link and anchor resolves, README stays a front door,
figures quoted away from their home match it, and every flag the pages name exists."""

import re
import sys
from pathlib import Path

import pytest

from conftest import REPO

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
# A measured figure: a number with a unit of time, speed-up, size or loss ("0.406 ms",
# "1.28×", "27.6 min", "13.3 MB", "1,413 ms"), or a loss written with four decimals.
FIGURE = re.compile(
    r"(?<![\w.,])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+)"
    r"(?:\s?(ms|s|min|minutes|seconds|x|×|MB|KB|GB|nats/char|bits/char|bytes))?(?!\w|\.\d)"
)
MODEL_CARD = REPO / "saved_models" / "shakespeare" / "README.md"


def markdown_files():
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def without_code(text: str) -> str:
    """The text with fenced code blocks and inline code removed (links there are not links)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a file's headings: lower case, punctuation dropped, spaces to -."""
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {slug(heading) for heading in re.findall(r"^#{1,6} +(.+?) *$", text, flags=re.M)}


def slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def section(path: Path, anchor: str) -> str:
    """The text under a page's heading (to the next heading of its level or above); the
    whole page when there is no anchor."""
    text = path.read_text(encoding="utf-8")
    if not anchor:
        return text
    kept, level = None, 0
    for line in text.splitlines():
        heading = re.match(r"^(#{1,6}) +(.+?) *$", line)
        if heading and kept is not None and len(heading.group(1)) <= level:
            break
        if heading and kept is None and slug(heading.group(2)) == anchor:
            kept, level = [], len(heading.group(1))
        elif kept is not None:
            kept.append(line)
    return "\n".join(kept or [])


def prose_sentences(text: str):
    """The sentences of a page's prose: code blocks and tables left out."""
    for paragraph in re.split(r"\n\s*\n", re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)):
        if not paragraph.lstrip().startswith("|"):
            yield from re.split(r"(?<=[.;:])\s+(?=[A-Z(*-])", paragraph)


def measured_figures(sentence: str) -> set[str]:
    return {
        m.group(1)
        for m in FIGURE.finditer(sentence)
        if m.group(2) or re.fullmatch(r"\d\.\d{4}", m.group(1))
    }


def figure_problems(pages: list[Path], homes: list[Path]) -> list[str]:
    """Figures in the pages' prose that are quoted from another page (or model card) but
    do not appear in the section the sentence links to, or that appear on another page
    without a link to it: each figure lives on one page, and others link to it."""
    texts = {path: path.read_text(encoding="utf-8") for path in [*pages, *homes]}
    problems = []
    for path in pages:
        for sentence in prose_sentences(texts[path]):
            figures = measured_figures(sentence)
            if not figures:
                continue
            linked = []
            for target in LINK.findall(sentence):
                file_part, _, anchor = target.partition("#")
                other = (path.parent / file_part).resolve() if file_part else None
                if other and other != path.resolve() and other.is_file():
                    linked.append((other, anchor))
            in_linked = set()
            for other, anchor in linked:
                in_linked |= {m.group(1) for m in FIGURE.finditer(section(other, anchor))}
            where = f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path.name}"
            for figure in sorted(figures):
                if linked and figure not in in_linked:
                    problems.append(f"{where}: {figure} is not in the section it links to")
                number = re.compile(rf"(?<![\d.,]){re.escape(figure)}(?![\d,]|\.\d)")
                for other in texts:
                    restated = other != path and number.search(texts[other])
                    if restated and other.resolve() not in {o for o, _ in linked}:
                        problems.append(f"{where}: {figure} is also on {other.name}, unlinked")
    return problems


def test_figures_live_on_one_page_and_quotes_match_it():
    pages = markdown_files()
    assert not figure_problems(pages, [MODEL_CARD]), figure_problems(pages, [MODEL_CARD])


def test_the_figure_check_finds_a_wrong_quote_and_a_restated_figure(tmp_path):
    home = tmp_path / "home.md"
    home.write_text("# Home\n\n## Floor\n\n| step | 0.406 ms |\n\n## Other\n\n0.89 s\n")
    quoting = tmp_path / "quoting.md"
    quoting.write_text(
        "A step takes 0.406 ms ([floor](home.md#floor)).\n\n"
        "Its floor is 0.89 ms ([floor](home.md#floor)).\n\n"
        "Loading took 0.89 s.\n\nThe loss is 1.4084 here.\n"
    )
    problems = figure_problems([quoting], [home])
    assert problems == [
        "quoting.md: 0.89 is not in the section it links to",
        "quoting.md: 0.89 is also on home.md, unlinked",
    ]
    assert measured_figures("took 1,413 ms and 2.0 (dropout 0.2) to 1.4084, 1.5×") == {
        "1,413",
        "1.4084",
        "1.5",
    }


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
