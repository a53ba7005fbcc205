"""The documentation: every ```python block of the README and of the site (docs/) runs as
written, each alone in a namespace of its own (one test per block, so that the blocks
spread over the test workers); the site builds with MkDocs with warnings as errors, and
its HTML is what a reader should see: every ``##`` of a source page is a heading, and no
paragraph holds a list or a table as literal text (Markdown swallows a list that follows
a line of text with no blank line, and a table indented inside a list item)."""

import html
import importlib
import inspect
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCKS = [
    (page, i, block)
    for page in PAGES
    for i, block in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S))
]


def test_the_docs_have_python_examples():
    pages = {page.name for page, _, _ in BLOCKS}
    assert len(BLOCKS) >= 10 and {"README.md", "index.md", "training.md", "data.md"} <= pages, pages


@pytest.mark.parametrize("page,index,block", BLOCKS, ids=[f"{p.relative_to(ROOT)}:{i}" for p, i, _ in BLOCKS])
def test_a_python_block_runs(page, index, block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples save files
    exec(compile(block, f"{page}:block{index}", "exec"), {})  # a fresh namespace: no example leans on another


def test_the_site_builds_with_warnings_as_errors(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr[-4000:]
    assert "WARNING" not in out.stderr, out.stderr[-4000:]
    api = (tmp_path / "site" / "api" / "callbacks" / "index.html").read_text()
    assert "ModelCheckpoint" in api and "resume" in api  # the reference is generated from the docstrings
    faults = [fault for page in sorted((ROOT / "docs").rglob("*.md")) for fault in rendering_faults(page, tmp_path)]
    faults += [fault for page in sorted((ROOT / "docs" / "api").glob("*.md")) for fault in api_faults(page, tmp_path)]
    assert not faults, "\n".join(faults)


def api_faults(source: pathlib.Path, site: pathlib.Path) -> list[str]:
    """What an API page shows wrongly: an object that is not public (a private name, a
    module's internals where a package's ``__all__`` is meant), or a callable class
    without its ``__call__`` and the shapes it takes and returns."""
    page = (site / "site" / "api" / source.stem / "index.html").read_text()
    shown = re.findall(r'<h\d id="(jaxrnn\.[^"]+)"', page)
    faults = [f"{source.name}: {fault}" for fault in split_returns(page)]
    for target in re.findall(r"^::: (\S+)", source.read_text(), flags=re.M):
        obj = documented(target)
        members = [name[len(target) + 1 :] for name in shown if name.startswith(target + ".")]
        public = getattr(obj, "__all__", None) if inspect.ismodule(obj) else None
        if inspect.ismodule(obj) and public is None:
            faults.append(f"{source.name}: {target} is a module without __all__ (its internals would show)")
        for member in members:
            first = member.split(".")[0]
            if any(part.startswith("_") and part != "__call__" for part in member.split(".")):
                faults.append(f"{source.name}: {target}.{member} is private")
            elif public is not None and first not in public:
                faults.append(f"{source.name}: {target}.{member} is not in {target}.__all__")
        method = call_method(obj) if inspect.isclass(obj) else None
        if method is not None:
            section = re.search(rf'id="{re.escape(target)}\.{method}"(.*?)(<h\d id=|$)', page, flags=re.S)
            if section is None:
                faults.append(f"{source.name}: {target} does not show its {method}")
            elif not re.search(r"Array\b|\((B|N|T|\.\.\.|\*b)\b", plain(section.group(1))):
                faults.append(f"{source.name}: {target}.{method} shows no shapes")
    return faults


def split_returns(page: str) -> list[str]:
    """Returns sections that the docstring parser broke into several unnamed items (a
    description continued on a line of its own, for a tuple or union return type)."""
    faults = []
    for match in re.finditer(r"Returns:</span></p>\s*<ul>(.*?)</ul>", page, flags=re.S):
        unnamed = [item for item in re.findall(r"<li.*?</li>", match.group(1), flags=re.S) if "<b>" not in item]
        if len(unnamed) > 1:
            owner = re.findall(r'<h\d id="([^"]+)"', page[: match.start()])[-1]
            faults.append(f"{owner}: Returns split into {len(unnamed)} items: {plain(unnamed[1])[:60]!r}")
    return faults


def documented(target: str):
    """The object a ``::: target`` line documents: a module, or a name in one."""
    try:
        return importlib.import_module(target)
    except ImportError:
        module, _, name = target.rpartition(".")
        return getattr(documented(module), name)


def call_method(cls: type) -> str | None:
    """What a user calls an instance of ``cls`` through: ``forward`` for a PyTorch module,
    ``__call__`` for a class that has one (of its own or inherited), else None."""
    if any(base.__module__.startswith("torch") and base.__name__ == "Module" for base in cls.__mro__):
        return "forward"
    if issubclass(cls, BaseException) or not any("__call__" in vars(base) for base in cls.__mro__[:-1]):
        return None
    return "__call__"


def rendering_faults(source: pathlib.Path, site: pathlib.Path) -> list[str]:
    """What the built page of ``source`` shows wrongly: a ``##`` of the source that is not
    an h2 of the page, a paragraph with a line that starts a list item or a table row."""
    name = source.relative_to(ROOT / "docs").with_suffix("")
    built = site / "site" / (name.parent if name.name == "index" else name) / "index.html"
    page = built.read_text()
    article = re.search(r"<article[^>]*>(.*)</article>", page, flags=re.S).group(1)
    article = re.sub(r"<pre.*?</pre>", "", article, flags=re.S)
    text = re.sub(r"```.*?```", "", source.read_text(), flags=re.S)
    shown = {plain(h) for h in re.findall(r"<h2[^>]*>(.*?)</h2>", article, flags=re.S)}
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    faults = [f"{source.name}: '## {h}' is no heading" for h in headings if plain(h) not in shown]
    starts_item = re.compile(r"\s*(- |\* |\d+\. |\| .*\|)")  # a list item, a table row
    for paragraph in re.findall(r"<p>(.*?)</p>", article, flags=re.S):
        literal = [line for line in paragraph.split("\n")[1:] if starts_item.match(plain(line))]
        faults += [f"{source.name}: a paragraph holds '{plain(line)[:60]}'" for line in literal[:1]]
    return faults


def plain(fragment: str) -> str:
    """Text without tags, entities, Markdown's code and bold marks or the heading anchor."""
    text = html.unescape(re.sub(r"<[^>]+>", "", fragment)).replace("¶", "")
    return re.sub(r"[`*]", "", text).strip()
