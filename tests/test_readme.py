"""Every ```python block of the README runs as written, each alone in a namespace of its own."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples save files
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python examples"
    for block in blocks:  # a fresh namespace each: an example may not lean on one before it
        exec(compile(block, str(README), "exec"), {})
