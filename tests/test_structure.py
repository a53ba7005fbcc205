"""The package's structure, read from its source: no import cycle between modules, and no
module importing another module's private name (``jaxrnn._checks``, the shared checks,
is private to the package, not to a module)."""

import ast
import pathlib
import re
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent / "jaxrnn"


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def imports(name: str) -> list[tuple[str, str]]:
    """``(module, imported name)`` of every jaxrnn import in module ``name``, wherever it stands
    (inside functions and ``if TYPE_CHECKING`` too); the name is '' for ``import module``."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found += [(module, a.name) for a in node.names if module.startswith("jaxrnn")]
        elif isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name.startswith("jaxrnn")]
    return found


def targets(name: str) -> set[str]:
    """The modules ``name`` imports (a name that is itself a module counts as that module)."""
    out = set()
    for module, imported in imports(name):
        out.add(f"{module}.{imported}" if f"{module}.{imported}" in MODULES else module)
    return out & set(MODULES)


def test_no_module_imports_another_modules_private_name():
    private = [
        f"{name} imports {imported} from {module}"
        for name in MODULES
        for module, imported in imports(name)
        if imported.startswith("_") and module != name
    ]
    assert not private, private


def test_no_import_cycle_between_modules():
    """A package's __init__ re-exports its modules; a cycle through it is a cycle too."""
    graph = {name: targets(name) - {name} for name in MODULES}
    cycles, state = [], {}

    def visit(name, path):
        state[name] = "open"
        for nxt in sorted(graph[name]):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt) :] + [nxt] if nxt in path else [name, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, cycles[:5]


def tracked_files() -> list[pathlib.Path]:
    """The files git tracks in this checkout (CI runs the suite in a fresh clone)."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT.parent, capture_output=True, check=True).stdout
    return [ROOT.parent / name for name in out.decode().split("\0") if name]


def test_no_tracked_file_above_one_megabyte():
    """Large results are kept as summaries (what the pages cite and the figures draw)."""
    sizes = {p.relative_to(ROOT.parent): p.stat().st_size for p in tracked_files() if p.is_file()}
    large = {str(name): size for name, size in sizes.items() if size > 1_000_000}
    assert not large, large


MACHINE_PATH = re.compile(r"(?<![\w.~-])/(work|home|tmp|root|Users|mnt|scratch|private)/")


def test_results_and_docs_carry_no_machine_path():
    """A results file records its command as a user types it (``python -m benchmarks.x``,
    ``--data data/mnist``), not the paths of the machine that ran it."""
    found = [
        f"{p.relative_to(ROOT.parent)}:{i + 1}: {line.strip()[:120]}"
        for p in tracked_files()
        if p.parts[len(ROOT.parent.parts)] in ("benchmarks", "docs") and p.suffix in (".md", ".json", ".txt")
        for i, line in enumerate(p.read_text(errors="replace").splitlines())
        if MACHINE_PATH.search(line)
    ]
    assert not found, found[:10]


def test_one_name_per_thing_across_the_public_namespaces():
    """A name that jaxrnn or one of its packages exports means one object wherever it is
    exported (``jaxrnn.datasets.SeriesSplits`` and ``jaxrnn.parallel.Forecast`` were once
    both ``Forecast``)."""
    import importlib

    packages = [name for name, path in MODULES.items() if path.name == "__init__.py"]
    meaning: dict[str, dict[int, str]] = {}
    for package in packages:
        module = importlib.import_module(package)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            meaning.setdefault(name, {}).setdefault(id(obj), f"{package}.{name}")
    clashes = {name: sorted(where.values()) for name, where in meaning.items() if len(where) > 1}
    assert not clashes, clashes
