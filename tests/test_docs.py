"""README and docs/: every relative link and anchor resolves, README stays a front door,
figures quoted away from their home match it, and every flag the pages name exists."""

import re
import shlex
import shutil
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


# --- the documented commands ------------------------------------------------------------

# The pages in reading order: a page's examples may use what an earlier page made
# (runs/quickstart comes from README's tour).
PAGES_IN_ORDER = [
    "README.md",
    "docs/training.md",
    "docs/generation.md",
    "docs/serving.md",
    "docs/devices.md",
    "docs/layer.md",
    "docs/scaling.md",
    "docs/api.md",
    "docs/architecture.md",
    "docs/performance.md",
]
REPRODUCE_SCRIPT = "scripts/reproduce_shakespeare.sh"  # RUN [train flags]: the preset


def ansi_c_unquoted(line: str) -> str:
    """bash's $'...' strings (`$'ROMEO:\\n'`) as plain shell words holding what bash passes."""

    def plain(match):
        return shlex.quote(match.group(1).encode("latin-1").decode("unicode_escape"))

    return re.sub(r"\$'((?:[^'\\]|\\.)*)'", plain, line)


def documented_commands(path: Path) -> list[list[str]]:
    """The `lstm-textgen` commands in a page's bash blocks, as the argv after `lstm-textgen`
    (`scripts/reproduce_shakespeare.sh RUN FLAGS` as the `train` it runs)."""
    commands = []
    text = path.read_text(encoding="utf-8")
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
        for line in re.sub(r"\\\n", " ", block).splitlines():
            if "lstm-textgen" not in line and REPRODUCE_SCRIPT not in line:
                continue  # other programs' lines (curl's JSON spans lines)
            words = shlex.split(ansi_c_unquoted(line), comments=True)
            while words:
                part, words = (
                    (words, [])
                    if "&&" not in words
                    else (
                        words[: words.index("&&")],
                        words[words.index("&&") + 1 :],
                    )
                )
                if part[:1] == ["lstm-textgen"]:
                    commands.append(part[1:])
                elif part[:1] == [REPRODUCE_SCRIPT]:
                    run = part[1:2] or ["runs/shakespeare"]
                    commands.append(["train", "--run", *run, "--preset", "shakespeare", *part[2:]])
    return commands


def parse_documented(argv: list[str]):
    """Parse a documented command as the CLI would: a bad flag raises UsageError (or, for a
    benchmark's options, SystemExit)."""
    from lstm_textgen.cli import parse_args

    args = parse_args(argv)
    if argv[0] == "bench":
        import importlib

        importlib.import_module(f"lstm_textgen.bench.{args.which}").build_parser().parse_args(
            args.options
        )
    return args


def test_the_pages_in_order_are_every_page():
    assert sorted(PAGES_IN_ORDER) == sorted(
        str(p.relative_to(REPO)) for p in markdown_files() if p.name != "commands.md"
    )


def test_documented_commands_are_read_as_bash_passes_them(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "```bash\npip install x && lstm-textgen generate --prompt $'A:\\n' --stop , \\\n"
        "    --seed 1   # a comment\nscripts/reproduce_shakespeare.sh runs/c --carry-state\n```\n"
        "```text\nlstm-textgen not a command\n```\n"
    )
    assert documented_commands(page) == [
        ["generate", "--prompt", "A:\n", "--stop", ",", "--seed", "1"],
        ["train", "--run", "runs/c", "--preset", "shakespeare", "--carry-state"],
    ]


def test_every_documented_command_parses():
    # A flag that disappears or changes its choices fails here, before the slow tour.
    from lstm_textgen.cli import UsageError

    bad = []
    for page in PAGES_IN_ORDER:
        for argv in documented_commands(REPO / page):
            try:
                parse_documented(argv)
            except (UsageError, SystemExit) as e:
                bad.append(f"{page}: lstm-textgen {shlex.join(argv)}: {e}")
    assert not bad, bad
    with pytest.raises(UsageError, match="--no-such-flag"):
        parse_documented(["generate", "--no-such-flag"])


def cli_flags() -> set[str]:
    """Every option string of every command and benchmark, hidden aliases included."""
    import argparse
    import importlib

    from lstm_textgen.bench import BENCHMARKS
    from lstm_textgen.cli import build_parser

    parsers = [build_parser()]
    parsers += [
        importlib.import_module(f"lstm_textgen.bench.{n}").build_parser() for n in BENCHMARKS
    ]
    flags = set()
    while parsers:
        parser = parsers.pop()
        for action in parser._actions:  # argparse lists options and sub-commands only here
            flags.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
    return flags


# Flags of other programs that the pages show. tensorflow_model_server's are spelled with
# underscores (`--model_base_path`), which no lstm-textgen flag is.
OTHER_PROGRAMS_FLAGS = {
    "--rm": "docker run",
    "--check": "ruff format --check and scripts/command_reference.py --check",
    "--logdir": "tensorboard",
}


def test_every_flag_the_pages_name_exists():
    flags = cli_flags()
    assert not any("_" in flag for flag in flags)
    unknown = set()
    for path in markdown_files():
        if path.name == "commands.md":
            continue  # the parsers' own help, checked above
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", path.read_text(encoding="utf-8")):
            if flag not in flags and "_" not in flag and flag not in OTHER_PROGRAMS_FLAGS:
                unknown.add(f"{path.name}: {flag}")
    assert not unknown, sorted(unknown)
    assert {"--init-from", "--no-jit", "--sizes-mb", "--bf16"} <= flags


# How the tour test makes each documented command small: training runs a few small
# batches and validates on two, a model whose size the page leaves open has 32 units (the
# sizes a page gives stay, so `inspect --units 37,98 --layer 1` still fits), and
# generation makes at most 100 characters.
SMALL_TRAINING = [
    "--max-steps", "6", "--batch-size", "8", "--seq-len", "32", "--checkpoint-every", "3",
    "--eval-batches", "2",
]  # fmt: skip
SMALL_MODEL = ["--units", "32", "--embedding-dim", "16"]
RESUMED_MAX_STEPS = "9"
MAX_GENERATED = 100
NOT_RUN = {  # documented commands the tour test parses but does not run
    "bench": "benchmarks time full-size models; tests/test_bench.py runs each one small",
}


def small_version(argv: list[str], manual_dir: str, server_url: str) -> list[str]:
    """A documented command made small enough for the suite; the flags it shows stay."""

    def replace(argv, flag, value):
        if flag in argv:
            argv = argv[:]
            argv[argv.index(flag) + 1] = value
        return argv

    argv = replace(argv, "--tfds-manual-dir", manual_dir)
    argv = replace(argv, "--server", server_url)
    if argv[0] == "train" and "--resume" in argv:
        return replace(argv, "--max-steps", RESUMED_MAX_STEPS)
    if argv[0] == "train":
        sized = "--units" in argv or "--init-from" in argv  # a source fixes the size
        return argv + SMALL_TRAINING + ([] if sized else SMALL_MODEL)  # later flags win
    for flag in ("--num-chars",):
        if flag in argv and int(argv[argv.index(flag) + 1]) > MAX_GENERATED:
            argv = replace(argv, flag, str(MAX_GENERATED))
    return argv


def tour_files(folder: Path, corpus: str) -> None:
    """The user's files the examples name (my_play.txt, notes/*.txt, held_out.txt), cut
    from tiny Shakespeare, and the repository's shipped model under saved_models/."""
    (folder / "notes").mkdir()
    for name, start in [
        ("my_play.txt", 0),
        ("more.txt", 20_000),
        ("notes/act1.txt", 40_000),
        ("notes/act2.txt", 60_000),
        ("held_out.txt", 100_000),
    ]:
        size = 2_000 if name == "held_out.txt" else 20_000
        (folder / name).write_text(corpus[start : start + size], encoding="utf-8")
    (folder / "saved_models").mkdir()
    (folder / "saved_models" / "shakespeare").symlink_to(MODEL_CARD.parent)


@pytest.mark.slow
def test_the_readme_tour_and_the_docs_examples_run(tmp_path, monkeypatch, manual_dir):
    # Every documented command runs, page by page in reading order, from one working
    # folder (as from the repository root), made small by `small_version`.
    if manual_dir is None:
        pytest.skip("needs tiny Shakespeare's input.txt offline")
    from lstm_textgen.cli import main
    from lstm_textgen.store.export_layout import latest_version

    from tf_serving import fake_tf_serving

    tour_files(tmp_path, (Path(manual_dir) / "input.txt").read_text(encoding="utf-8"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LSTM_TEXTGEN_TFDS_MANUAL_DIR", manual_dir)
    failed, ran = [], set()
    shipped = latest_version(str(MODEL_CARD.parent))
    with fake_tf_serving("shakespeare", shipped) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        for page in PAGES_IN_ORDER:
            for argv in documented_commands(REPO / page):
                if argv[0] in NOT_RUN:
                    continue
                small = small_version(argv, manual_dir, url)
                if shlex.join(small) in ran and small[0] != "train":
                    continue  # shown again on a later page: it ran already
                if small[0] == "train" and "--resume" not in small:
                    shutil.rmtree(small[small.index("--run") + 1], ignore_errors=True)
                ran.add(shlex.join(small))
                rc = main(small)
                if rc != 0:
                    failed.append(f"{page}: lstm-textgen {shlex.join(small)}")
    assert not failed, failed
    assert len(ran) >= 30
