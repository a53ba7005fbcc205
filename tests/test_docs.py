"""The documentation: every ```python block of the README and of the site (docs/) runs as
written, each alone in a namespace of its own (one test per block, so that the blocks
spread over the test workers); the site builds with MkDocs with warnings as errors, and
its HTML is what a reader should see: every ``##`` of a source page is a heading, and no
paragraph holds a list or a table as literal text (Markdown swallows a list that follows
a line of text with no blank line, and a table indented inside a list item)."""

import html
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
    assert not faults, "\n".join(faults)


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
