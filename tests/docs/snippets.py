"""Run the code blocks of a Markdown page, in order, the way a reader would.

Every fenced block whose language is shell (``sh``, ``bash``, ``shell``), Python
(``python``, ``py``) or JavaScript (``js``, ``javascript``, ``mjs``) is run and must exit
0, unless a directive says otherwise. A directive is an HTML comment (invisible on the
rendered page) on the last non-blank line before the fence::

    <!-- doc: skip-run REASON -->                 not run; the reason is required
    <!-- doc: background NAME wait-for="TEXT" --> started and left running, like a server
                                                  or a subscriber in another terminal,
                                                  until the page is done; the next block
                                                  starts once its output holds TEXT
    <!-- doc: file PATH -->                       saved as PATH (any language), as the page
                                                  tells the reader to; a later block must
                                                  run it (name PATH, or ``module:`` for a
                                                  Python file), unless it is data
    <!-- doc: output-of NAME -->                  lines background NAME prints, in a row
                                                  (waited for); ``…`` stands for any text

A block of another language (TOML, plain output) is not run unless a directive names it.
A directive that is unknown, malformed or not followed by a block is an error, as is a
runnable block that is neither run nor marked.

How a page runs: in a fresh working directory holding ``.venv`` (a link to the venv that
runs the tests) and ``node_modules`` (a link to ``tests/compat/js``'s), with the venv's
``bin`` first on ``PATH`` and no ``PARSEC_*`` variable of the caller. Shell blocks run with
``bash`` (``set -eo pipefail``); Python blocks with the venv's ``python``; JavaScript
blocks with ``node`` (as ``.mjs``). ``make TARGET`` runs the command the repository's
Makefile runs for TARGET (``make -n``), less the install steps before it, which the test
environment has done. Every loopback port a page names (``127.0.0.1:8000``,
``--port 8001``) is replaced by a free one, and ``PARSEC_ADDR`` / ``PARSEC_SERVER`` point
the defaults (``127.0.0.1:8000``) at it, so pages run beside anything on the machine.
Output is compared after mapping back: those ports, the working directory as
:data:`CHECKOUT`, and RFC 3339 times as ``<time>``.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from background import Background, free_port

__all__ = ["CHECKOUT", "REPO", "Block", "PageRun", "SnippetError", "blocks_of", "check_plan"]

REPO: Final = Path(__file__).resolve().parents[2]
JS_MODULES: Final = REPO / "tests" / "compat" / "js" / "node_modules"
CHECKOUT: Final = "/home/you/parsec"
"""Where the pages pretend the reader's checkout is, in the output they quote."""
DEFAULT_PORT: Final = 8000
RUN_TIMEOUT: Final = 90.0
WAIT_TIMEOUT: Final = 30.0

LANGUAGES: Final = {
    "sh": "shell",
    "bash": "shell",
    "shell": "shell",
    "python": "python",
    "py": "python",
    "js": "js",
    "javascript": "js",
    "mjs": "js",
}
VERBS: Final = ("skip-run", "background", "file", "output-of")

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
_DIRECTIVE = re.compile(r"^\s*<!--\s*doc:\s*(?P<body>.*?)\s*-->\s*$")
_PORT = re.compile(r"\b(?P<host>127\.0\.0\.1|localhost):(?P<port>\d{4,5})\b")
_PORT_FLAG = re.compile(r"(?P<flag>--port[ =])(?P<port>\d{4,5})\b")
_TIME = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z\b")

_MAKE = """make() {  # the Makefile's command for the target, less the install steps before it
  local recipe
  recipe=$(command make --no-print-directory -n -f "$PARSEC_DOCS_REPO/Makefile" "$@")
  eval "$(printf '%s\\n' "$recipe" | tail -n 1)"
}
"""


class SnippetError(AssertionError):
    """A page's block failed, or its directives are wrong; says where."""


@dataclass(frozen=True, slots=True)
class Directive:
    verb: str
    args: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Block:
    """A fenced block: where it starts, its language (the fence's info word), text and
    the directive above it, if any."""

    path: Path
    line: int
    info: str
    text: str
    directive: Directive | None

    @property
    def language(self) -> str | None:
        """``shell``, ``python`` or ``js`` for a runnable block, else None."""
        return LANGUAGES.get(self.info.lower())

    @property
    def where(self) -> str:
        return f"{_shown(self.path)}:{self.line}"

    def fail(self, problem: str) -> SnippetError:
        return SnippetError(f"{self.where}: {problem}\n--- the block ---\n{self.text}")


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it is in it."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _directive(body: str, where: str) -> Directive:
    verb, _, rest = body.partition(" ")
    if verb not in VERBS:
        raise SnippetError(f"{where}: unknown doc directive {verb!r}; expected one of {VERBS}")
    if verb == "skip-run":
        if not rest.strip():
            raise SnippetError(f"{where}: skip-run needs a reason")
        return Directive(verb, reason=rest.strip())
    try:
        words = shlex.split(rest)
    except ValueError as e:
        raise SnippetError(f"{where}: malformed doc directive {body!r}: {e}") from None
    args = tuple(word for word in words if "=" not in word)
    options = dict(word.split("=", 1) for word in words if "=" in word)
    wanted = {"background": ({"wait-for"}, 1), "file": (set(), 1), "output-of": (set(), 1)}
    keys, count = wanted[verb]
    if len(args) != count or set(options) != keys:
        raise SnippetError(
            f"{where}: {verb} takes {count} name and the options {sorted(keys)}; got {body!r}"
        )
    return Directive(verb, args, options)


def blocks_of(path: Path) -> list[Block]:
    """The fenced blocks of the Markdown file ``path``, with their directives; a
    directive that is malformed or not right above a block is a SnippetError."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    pending: tuple[Directive, int] | None = None
    number = 0
    while number < len(lines):
        line = lines[number]
        number += 1
        where = f"{_shown(path)}:{number}"
        if match := _DIRECTIVE.match(line):
            if pending is not None:
                raise SnippetError(f"{where}: two doc directives in a row")
            pending = (_directive(match["body"], where), number)
            continue
        fence = _FENCE.match(line)
        if fence is None:
            if line.strip() and pending is not None:
                raise SnippetError(
                    f"{_shown(path)}:{pending[1]}: a doc directive must be right above a "
                    "fenced block"
                )
            continue
        start, indent, mark = number, fence["indent"], fence["fence"]
        body: list[str] = []
        while number < len(lines) and not lines[number].strip().startswith(mark):
            text = lines[number]
            body.append(text[len(indent) :] if text.startswith(indent) else text.lstrip())
            number += 1
        if number == len(lines):
            raise SnippetError(f"{where}: this block is never closed")
        number += 1
        directive = pending[0] if pending else None
        blocks.append(Block(path, start, fence["info"], "\n".join(body) + "\n", directive))
        pending = None
    if pending is not None:
        raise SnippetError(
            f"{_shown(path)}:{pending[1]}: a doc directive must be right above a fenced block"
        )
    return blocks


def check_plan(blocks: list[Block]) -> None:
    """Every runnable block is run or marked, every ``output-of`` names an earlier
    background, and every saved script is used by a later block that runs."""
    backgrounds: set[str] = set()
    for index, block in enumerate(blocks):
        directive = block.directive
        if directive is None:
            continue
        if directive.verb == "background":
            if block.language is None:
                raise block.fail("only shell, Python or JavaScript runs in the background")
            backgrounds.add(directive.args[0])
        elif directive.verb == "output-of" and directive.args[0] not in backgrounds:
            raise block.fail(f"output-of {directive.args[0]!r}: no background of that name above")
        elif directive.verb == "file" and block.language is not None:
            name = directive.args[0]
            module = Path(name).stem if block.language == "python" else name  # app:app
            used = re.compile(rf"(?<![\w.]){re.escape(name)}\b|(?<![\w.]){re.escape(module)}:")
            later = [b for b in blocks[index + 1 :] if _runs(b) and used.search(b.text)]
            if not later:
                raise block.fail(f"saved as {name} but no later block that runs mentions it")
        elif directive.verb == "skip-run" and block.language is None:
            raise block.fail("skip-run on a block that would not run anyway")


def _runs(block: Block) -> bool:
    return block.language is not None and (
        block.directive is None or block.directive.verb == "background"
    )


class PageRun:
    """Runs one page's blocks in ``workdir``; ``close`` stops its background blocks.
    ``wait`` is how long a background block's ``wait-for`` text or quoted output may
    take to appear."""

    def __init__(self, blocks: list[Block], workdir: Path, *, wait: float = WAIT_TIMEOUT) -> None:
        check_plan(blocks)
        self.wait = wait
        self.blocks = blocks
        self.workdir = workdir
        venv = Path(sys.executable).parent.parent
        (workdir / ".venv").symlink_to(venv, target_is_directory=True)
        (workdir / "node_modules").symlink_to(JS_MODULES, target_is_directory=True)
        self.ports = {DEFAULT_PORT: free_port()}
        for block in blocks:
            for pattern in (_PORT, _PORT_FLAG):
                for match in pattern.finditer(block.text):
                    self.ports.setdefault(int(match["port"]), free_port())
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARSEC_")}
        default = self.ports[DEFAULT_PORT]
        self.env = env | {
            "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "PARSEC_ADDR": f"127.0.0.1:{default}",
            "PARSEC_SERVER": f"http://127.0.0.1:{default}",
            "PARSEC_DOCS_REPO": str(REPO),
            "PYTHONUNBUFFERED": "1",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        self.python = str(venv / "bin" / "python")
        self.background: dict[str, tuple[Block, Background]] = {}

    # -- the page -----------------------------------------------------------------------

    def run(self) -> None:
        """Every block in order; a SnippetError for the first that fails."""
        for index, block in enumerate(self.blocks):
            directive = block.directive
            if directive is None:
                if block.language is not None:
                    self._foreground(index, block)
            elif directive.verb == "background":
                self._background(index, block, directive)
            elif directive.verb == "file":
                target = self.workdir / directive.args[0]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(self._ported(block.text), encoding="utf-8")
            elif directive.verb == "output-of":
                self._expect(block, *self.background[directive.args[0]])
        for name, (block, process) in self.background.items():
            if process.popen.poll() is not None:
                raise block.fail(
                    f"background {name!r} ended before the page did, with "
                    f"{process.popen.returncode}:\n" + "\n".join(process.output)
                )

    def close(self) -> None:
        """Stop the background blocks, last started first, as Ctrl-C would."""
        for _, process in reversed(self.background.values()):
            process.stop(signal.SIGINT)

    # -- one block ----------------------------------------------------------------------

    def _argv(self, index: int, block: Block) -> list[str]:
        """The command that runs ``block``, its text saved in the working directory."""
        text = self._ported(block.text)
        if block.language == "shell":
            script = self.workdir / f".block-{index}.sh"
            script.write_text(f"set -eo pipefail\n{_MAKE}\n{text}", encoding="utf-8")
            return ["bash", str(script)]
        suffix = ".py" if block.language == "python" else ".mjs"
        script = self.workdir / f"block-{index}{suffix}"
        script.write_text(text, encoding="utf-8")
        return [self.python, script.name] if block.language == "python" else ["node", script.name]

    def _foreground(self, index: int, block: Block) -> None:
        try:
            done = subprocess.run(
                self._argv(index, block),
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise block.fail(f"still running after {RUN_TIMEOUT}s") from None
        if done.returncode != 0:
            raise block.fail(
                f"exited with {done.returncode}\n--- stdout ---\n{done.stdout}"
                f"--- stderr ---\n{done.stderr}"
            )

    def _background(self, index: int, block: Block, directive: Directive) -> None:
        process = Background(self._argv(index, block), cwd=self.workdir, env=self.env)
        self.background[directive.args[0]] = (block, process)
        try:
            process.wait_for(directive.options["wait-for"], self.wait)
        except AssertionError as e:
            raise block.fail(str(e)) from None

    def _expect(self, block: Block, source: Block, process: Background) -> None:
        """Wait until ``process`` printed ``block``'s lines in a row."""
        wanted = [_pattern(_normal(line)) for line in block.text.splitlines()]
        deadline = time.monotonic() + self.wait
        while True:
            seen = [self._unported(line) for line in process.output]
            if any(_matches(wanted, seen[i : i + len(wanted)]) for i in range(len(seen))):
                return
            if time.monotonic() > deadline or process.popen.poll() is not None:
                raise block.fail(
                    f"the output of {source.where} does not hold these lines in a row; "
                    "it is:\n" + "\n".join(seen)
                )
            time.sleep(0.1)

    # -- ports and paths ----------------------------------------------------------------

    def _ported(self, text: str) -> str:
        """``text`` with the page's ports replaced by this run's."""
        text = _PORT.sub(lambda m: f"{m['host']}:{self.ports[int(m['port'])]}", text)
        return _PORT_FLAG.sub(lambda m: f"{m['flag']}{self.ports[int(m['port'])]}", text)

    def _unported(self, line: str) -> str:
        """An output line as the page would show it: ports, paths and times mapped back."""
        for page, ours in self.ports.items():
            line = line.replace(f"127.0.0.1:{ours}", f"127.0.0.1:{page}")
        return _normal(line.replace(str(self.workdir), CHECKOUT))


def _normal(line: str) -> str:
    return _TIME.sub("<time>", line)


def _pattern(line: str) -> re.Pattern[str]:
    return re.compile(".*?".join(re.escape(part) for part in line.split("…")))


def _matches(wanted: list[re.Pattern[str]], lines: list[str]) -> bool:
    return len(lines) == len(wanted) and all(
        p.fullmatch(line) for p, line in zip(wanted, lines, strict=True)
    )
