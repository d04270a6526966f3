"""Every code example in the docs runs (issue 13).

Each page of ``docs/`` with ```` ```python ```` blocks is one test: its blocks run in order in
one namespace (a later block uses the names of an earlier one), in an empty working directory
(``Guard.open()`` makes ``./.piiguard`` there) and with no ``PIIGUARD_*`` variable set. A block
written as a Python session (``>>>`` lines) runs as a doctest, so its printed results are
checked too; a line ``--8<-- "path"`` is replaced by the file it includes, as mkdocs does.

Two HTML comments, which the reader does not see, adjust what runs:

- ``<!-- not run: why -->`` on the line right before a fence: the block is not run (it needs a
  web server, AWS, a Django project ...). The reason is required, and few blocks may say it
  (``NOT_RUN_BUDGET``): make a block runnable rather than mark it.
- ``<!-- setup: code -->``: one line of Python run before the next block of the page, or after
  the page's last block when none follows (to call a framework app an example built). Use it
  sparingly: what a reader needs to run the example belongs in the example.
"""

from __future__ import annotations

import ast
import asyncio
import doctest
import inspect
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.orm as sa_orm
import structlog

import piiguard as pg

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

#: At most this many blocks across the docs may be marked ``<!-- not run: ... -->``.
NOT_RUN_BUDGET = 8

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
NOT_RUN = re.compile(r"^<!--\s*not run:(?P<reason>.*?)-->$")
SETUP = re.compile(r"^<!--\s*setup:(?P<code>.*?)-->$")
MARKER = re.compile(r"^<!--\s*(not run|setup)\b")
SNIPPET = re.compile(r"""^--8<--\s+["'](?P<path>[^"']+)["']\s*$""")


@dataclass(frozen=True)
class Block:
    """One ```python block of a page, or one hidden setup line (``hidden=True``)."""

    page: str
    line: int  #: the 1-based line of the code's first line in the page
    code: str
    hidden: bool = False
    not_run: str | None = None  #: the reason given, when the block is marked not run

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"


def parse(page: Path) -> list[Block]:
    """The python blocks and hidden setup lines of a page, in order."""
    name = page.name
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        text = lines[index].strip()
        fence = FENCE.match(lines[index])
        if fence is None:
            if MARKER.match(text):
                setup = SETUP.match(text)
                if NOT_RUN.match(text):
                    following = FENCE.match(lines[index + 1]) if index + 1 < len(lines) else None
                    if following is None or following.group("lang") != "python":
                        pytest.fail(
                            f"docs/{name}:{index + 1}: a not-run marker must be on the line "
                            "right before a ```python fence"
                        )
                elif setup is not None and setup.group("code").strip():
                    blocks.append(Block(name, index + 1, setup.group("code").strip(), True))
                else:
                    pytest.fail(f"docs/{name}:{index + 1}: a malformed marker: {text}")
            index += 1
            continue
        indent, ticks = fence.group("indent"), fence.group("ticks")
        start = index + 1
        end = start
        while end < len(lines) and not lines[end].strip().startswith(ticks):
            end += 1
        if end == len(lines):
            pytest.fail(f"docs/{name}:{index + 1}: a fence that is never closed")
        if fence.group("lang") == "python":
            body = [line.removeprefix(indent) for line in lines[start:end]]
            previous = lines[index - 1].strip() if index > 0 else ""
            marked = NOT_RUN.match(previous)
            reason = marked.group("reason").strip() if marked else None
            blocks.append(Block(name, start + 1, "\n".join(body) + "\n", not_run=reason))
        index = end + 1
    return blocks


def pages() -> list[str]:
    """Every page of docs/ with at least one ```python block, by file name (read when the
    tests are collected: a page added later is tested too)."""
    python_fence = re.compile(r"^[ \t]*(`{3,}|~{3,})\s*python\b", re.M)
    return sorted(
        page.name for page in DOCS.glob("*.md") if python_fence.search(page.read_text("utf-8"))
    )


def expand_snippets(code: str) -> str:
    """Replace each ``--8<-- "path"`` line by the file (pymdownx.snippets, base path ".")."""
    out: list[str] = []
    for line in code.splitlines(keepends=True):
        found = SNIPPET.match(line.strip())
        out.append((ROOT / found.group("path")).read_text(encoding="utf-8") if found else line)
    return "".join(out)


def is_session(block: Block) -> bool:
    """A block written as an interactive session (``>>>`` lines)."""
    return block.code.lstrip().startswith(">>>")


def python_source(block: Block) -> str:
    """The Python a block runs: its snippets included, a session's prompts and output
    left out."""
    if is_session(block):
        examples = doctest.DocTestParser().get_examples(block.code, block.where)
        return "".join(example.source for example in examples)
    return expand_snippets(block.code)


def run_doctest(block: Block, namespace: dict[str, Any]) -> None:
    """Run a ``>>>`` block as a doctest in the page's namespace: its output is checked."""
    parser = doctest.DocTestParser()
    test = parser.get_doctest(block.code, {}, block.where, str(DOCS / block.page), block.line - 1)
    test.globs = namespace  # the page's own namespace, not a copy
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    result = runner.run(test, out=report.append, clear_globs=False)
    if result.failed:
        pytest.fail(f"{block.where}: the session's output differs\n{''.join(report)}")


def run_block(block: Block, namespace: dict[str, Any]) -> None:
    """Run one block in the page's namespace. Lines are numbered as in the page, so a
    traceback points at the doc; a top-level ``await`` runs in a new event loop."""
    if is_session(block):
        run_doctest(block, namespace)
        return
    source = "\n" * (block.line - 1) + python_source(block)
    code = compile(
        source,
        str(DOCS / block.page),
        "exec",
        flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
        dont_inherit=True,  # the docs' code runs without this module's __future__ imports
    )
    if code.co_flags & inspect.CO_COROUTINE:
        asyncio.run(eval(code, namespace))  # noqa: S307 - our own docs
    else:
        exec(code, namespace)  # noqa: S102 - our own docs


@pytest.fixture
def opened_guards(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[pg.Guard]]:
    """Every Guard made while the test runs (a page may open one and replace it), closed at
    the end."""
    made: list[pg.Guard] = []
    original = pg.Guard.__init__

    def recording(self: pg.Guard, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(pg.Guard, "__init__", recording)
    yield made
    for guard in made:
        guard.close()


@pytest.fixture
def restored_environment() -> Iterator[None]:
    """os.environ as it was before the page (a page may set variables of its own)."""
    before = dict(os.environ)
    yield
    for name in set(os.environ) - set(before):
        del os.environ[name]
    for name, value in before.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


@pytest.mark.parametrize("page", pages())
def test_the_examples_of_the_page_run(
    page: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    opened_guards: list[pg.Guard],
    restored_environment: None,
) -> None:
    blocks = parse(DOCS / page)
    for block in blocks:
        assert block.not_run != "", f"{block.where}: a block not run must say why"
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("PIIGUARD_")]:
        monkeypatch.delenv(name)
    namespace: dict[str, Any] = {"__name__": f"docs_{Path(page).stem.replace('-', '_')}"}
    try:
        for block in blocks:
            if block.not_run is None:
                run_block(block, namespace)
            else:  # not run, but still Python
                compile(python_source(block), block.where, "exec", dont_inherit=True)
    finally:
        close_all(namespace)
        if any("structlog.configure" in block.code for block in blocks):
            structlog.reset_defaults()


def close_all(namespace: dict[str, Any]) -> None:
    """Close the Guards and the SQLAlchemy sessions, connections and engines a page left."""
    for value in list(namespace.values()):
        if isinstance(value, pg.Guard | sa_orm.Session):
            value.close()
        elif isinstance(value, sa.Connection):
            value.close()
            value.engine.dispose()
        elif isinstance(value, sa.Engine):
            value.dispose()


def test_few_blocks_are_not_run() -> None:
    """Every block marked not run says why, and there are at most NOT_RUN_BUDGET of them."""
    skipped = [
        block
        for page in sorted(DOCS.glob("*.md"))
        for block in parse(page)
        if block.not_run is not None
    ]
    for block in skipped:
        print(f"not run: {block.where}: {block.not_run}")  # the list, shown with -s
    assert all(block.not_run for block in skipped), "a block not run must say why"
    assert len(skipped) <= NOT_RUN_BUDGET, "\n".join(
        f"{block.where}: {block.not_run}" for block in skipped
    )


def test_the_markers_are_read_as_documented(tmp_path: Path) -> None:
    """A hidden setup runs in its place; a not-run marker binds the fence right after it,
    an empty reason is seen, and a stray or malformed marker fails the page."""
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- setup: x = 1 -->\n```python\ny = x\n```\n\n"
        "<!-- not run: -->\n```python\nz = 1\n```\n\n```sh\n<!-- setup: ignored -->\n```\n",
        encoding="utf-8",
    )
    blocks = parse(page)
    assert [(block.code, block.hidden, block.not_run) for block in blocks] == [
        ("x = 1", True, None),
        ("y = x\n", False, None),
        ("z = 1\n", False, ""),
    ]
    for wrong in ("<!-- not run: why -->\n\n```python\nz = 1\n```\n", "<!-- setup -->\n"):
        page.write_text(wrong, encoding="utf-8")
        with pytest.raises(pytest.fail.Exception):
            parse(page)
