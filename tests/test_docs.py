"""The documentation: every ```python block of the README and of the site (docs/) runs as
written, each alone in a namespace of its own (one test per block, so that the blocks
spread over the test workers); the site builds with MkDocs with warnings as errors."""

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
