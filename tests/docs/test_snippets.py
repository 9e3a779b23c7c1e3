"""The documentation's code blocks run, top to bottom, against real servers.

``README.md``, ``docs/quickstart.md`` and ``docs/token-broker.md`` are run block by block
by :mod:`.snippets` (conventions in its docstring): their servers, subscribers and SDK
clients are real processes, and the output they quote is compared with what those
processes print. The runner's own tests below feed it small pages, to show that it fails
when it should.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from parsec.config import load_options

from .snippets import REPO, PageRun, SnippetError, blocks_of, check_plan

PAGES = ["README.md", "docs/quickstart.md", "docs/token-broker.md", "docs/deploy.md"]


def run_page(path: Path, workdir: Path, **settings: float) -> PageRun:
    """Run the page at ``path`` in ``workdir``; its background blocks are stopped."""
    page = PageRun(blocks_of(path), workdir, **settings)
    try:
        page.run()
    finally:
        page.close()
    return page


@pytest.mark.parametrize("page", PAGES)
def test_every_runnable_block_is_run_or_marked(page: str) -> None:
    """Each shell, Python and JavaScript block runs or says why not, and every directive
    is well-formed and placed."""
    blocks = blocks_of(REPO / page)
    check_plan(blocks)
    assert any(block.language is not None for block in blocks)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("page", PAGES)
def test_the_page_runs_top_to_bottom(page: str, tmp_path: Path) -> None:
    """Every block of the page runs in order, as a reader would run them, and the output
    it quotes is what the commands print."""
    run_page(REPO / page, tmp_path)


def test_the_token_broker_configuration_loads(tmp_path: Path) -> None:
    """docs/token-broker.md's configuration is the contract's, and parsec accepts it."""
    (block, *_) = [b for b in blocks_of(REPO / "docs" / "token-broker.md") if b.info == "toml"]
    (tmp_path / "parsec.toml").write_text(block.text)
    broker = load_options(tmp_path / "parsec.toml", env={}).token_broker
    assert broker.enabled
    assert broker.roles_claim == "realm_access.roles"
    assert [(role.name, role.patterns) for role in broker.roles] == [("member", ("chat:*",))]


def test_the_complete_configuration_file_loads(tmp_path: Path) -> None:
    """docs/configuration.md's "complete file" is a configuration parsec accepts."""
    blocks = [b for b in blocks_of(REPO / "docs" / "configuration.md") if b.info == "toml"]
    complete = blocks[0].text
    assert "[[namespaces]]" in complete
    (tmp_path / "parsec.toml").write_text(complete)
    options = load_options(tmp_path / "parsec.toml", env={})
    assert options.namespaces[0].name == "chat"
    for block in blocks[1:]:
        tomllib.loads(block.text)


# -- the runner fails when it should ---------------------------------------------------------


@pytest.fixture
def page(tmp_path: Path) -> tuple[Path, Path]:
    """A Markdown file to write a page into, and a working directory to run it in."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    return tmp_path / "page.md", workdir


def write(path: Path, *parts: str) -> Path:
    path.write_text("\n".join(parts) + "\n")
    return path


def test_unmarked_blocks_of_every_language_run(page: tuple[Path, Path]) -> None:
    """Shell, Python and JavaScript blocks run in the working directory, the JavaScript
    one with the `ws` package of tests/compat/js."""
    path, workdir = page
    write(
        path,
        "```sh\necho shell > shell.txt\n```",
        "```python\nfrom pathlib import Path\nPath('python.txt').write_text('python')\n```",
        "```js\nimport { writeFileSync } from 'node:fs';\nimport WebSocket from 'ws';\n"
        "writeFileSync('js.txt', typeof WebSocket);\n```",
        "```text\nnot run\n```",
    )
    run_page(path, workdir)
    assert (workdir / "shell.txt").read_text() == "shell\n"
    assert (workdir / "python.txt").read_text() == "python"
    assert (workdir / "js.txt").read_text() == "function"


@pytest.mark.parametrize(
    ("block", "words"),
    [
        ("```sh\nfalse\n```", "exited with 1"),
        ("```sh\nfalse\necho went on\n```", "exited with 1"),
        ("```python\nraise SystemExit(3)\n```", "exited with 3"),
        ("```js\nprocess.exit(4);\n```", "exited with 4"),
    ],
)
def test_a_failing_block_fails_the_page(page: tuple[Path, Path], block: str, words: str) -> None:
    """A block that exits non-zero, or whose shell command in the middle fails, fails
    the page, which says where."""
    path, workdir = page
    write(path, "# A page", "", block)
    with pytest.raises(SnippetError, match=words) as failure:
        run_page(path, workdir)
    assert str(failure.value).startswith(f"{path}:3: ")


@pytest.mark.parametrize(
    ("parts", "words"),
    [
        (["<!-- doc: skip-run -->", "```sh\nls\n```"], "skip-run needs a reason"),
        (["<!-- doc: dont -->", "```sh\nls\n```"], "unknown doc directive"),
        (["<!-- doc: skip-run no -->", "prose", "```sh\nls\n```"], "right above a fenced"),
        (["<!-- doc: output-of nobody -->", "```\nx\n```"], "no background of that name"),
        (["<!-- doc: file a.py -->", "```python\nx = 1\n```"], "no later block that runs"),
        (["<!-- doc: skip-run no -->", "```toml\nx = 1\n```"], "would not run anyway"),
        (["<!-- doc: background b -->", "```sh\nls\n```"], "background takes 1 name"),
    ],
)
def test_a_wrong_directive_fails_the_page(
    page: tuple[Path, Path], parts: list[str], words: str
) -> None:
    """Directives are checked before anything runs."""
    path, workdir = page
    write(path, *parts)
    with pytest.raises(SnippetError, match=words):
        run_page(path, workdir)


def test_background_output_and_ports(page: tuple[Path, Path]) -> None:
    """A background block keeps running while later blocks run; its quoted output
    matches with `…` and with the page's port, which the run replaced by its own."""
    path, workdir = page
    write(
        path,
        '<!-- doc: background echo wait-for="started" -->',
        "```sh\necho started\necho http://127.0.0.1:8000 $PARSEC_SERVER\n"
        "read -r line < fifo\necho got $line\nsleep 60\n```",
        "```sh\necho hello > fifo\n```",
        "<!-- doc: output-of echo -->",
        "```\nhttp://127.0.0.1:8000 http://127.0.0.1:8000\ngot h…o\n```",
    )
    os.mkfifo(workdir / "fifo")
    ran = run_page(path, workdir)
    printed = ran.background["echo"][1].output
    assert printed[1] == f"http://127.0.0.1:{ran.ports[8000]} http://127.0.0.1:{ran.ports[8000]}"
    assert ran.ports[8000] != 8000


def test_quoted_output_that_is_not_printed_fails(page: tuple[Path, Path]) -> None:
    """Quoted lines must be printed, in a row."""
    path, workdir = page
    write(
        path,
        '<!-- doc: background b wait-for="one" -->',
        "```sh\necho one\necho two\necho three\nsleep 60\n```",
        "<!-- doc: output-of b -->",
        "```\none\nthree\n```",
    )
    with pytest.raises(SnippetError, match="does not hold these lines in a row"):
        run_page(path, workdir, wait=2.0)


def test_a_background_block_that_ends_early_fails_the_page(page: tuple[Path, Path]) -> None:
    """A server or subscriber that stops before the page is done is a failure."""
    path, workdir = page
    # the page goes on for a second after "up", time enough for `echo` to have exited
    write(
        path,
        '<!-- doc: background b wait-for="up" -->',
        "```sh\necho up\n```",
        "```sh\nsleep 1\n```",
    )
    with pytest.raises(SnippetError, match="ended before the page did"):
        run_page(path, workdir)


def test_make_runs_the_makefile_command(page: tuple[Path, Path]) -> None:
    """`make serve ARGS=…` runs what the Makefile runs for it: `.venv/bin/parsec serve …`."""
    path, workdir = page
    write(path, '```sh\nmake serve ARGS="--help" > help.txt\n```')
    run_page(path, workdir)
    assert "--print-token" in (workdir / "help.txt").read_text()
