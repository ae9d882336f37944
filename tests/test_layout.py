"""The project's layout: no import cycles and imports that only go one way (the library never
reaches into the search or the analysis), a wheel that finds its search spaces from any working
directory, and package ``__all__`` lists that name what the packages hold."""
from __future__ import annotations

import ast
import importlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hpo_prune", "analysis")


# ------------------------------------------------------------------ the import graph
def _modules() -> dict[str, tuple[Path, bool]]:
    """Every module of PACKAGES: dotted name -> (file, is a package)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            found[".".join(parts)] = (path, is_package)
    return found


MODULES = _modules()


def _import_nodes(node: ast.AST):
    """Every import statement under ``node``: in functions too, and under ``if
    TYPE_CHECKING:`` too (an import for type hints alone still ties the modules together)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        yield from _import_nodes(child)


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The modules of PACKAGES one import statement of ``module`` imports (the deepest module
    each name resolves to; ``from pkg import name`` with ``name`` a submodule is that
    submodule)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[:len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        names = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source
                 for alias in node.names]
    found = set()
    for name in names:
        parts = name.split(".")
        known = [".".join(parts[:i]) for i in range(len(parts), 0, -1)
                 if ".".join(parts[:i]) in MODULES]
        if known:
            found.add(known[0])
    return found - {module}


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for module, (path, is_package) in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[module] = set().union(*(_targets(module, is_package, node)
                                      for node in _import_nodes(tree)))
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None (iterative depth-first search)."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    for start in sorted(graph):
        if colour[start] != WHITE:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        colour[start] = GREY
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                colour[path.pop()] = BLACK
                stack.pop()
            elif colour.get(nxt, BLACK) == GREY:
                return path[path.index(nxt):] + [nxt]
            elif colour.get(nxt) == WHITE:
                colour[nxt] = GREY
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_the_graph_sees_every_kind_of_import():
    """The resolver itself, on imports the real code uses: relative ones, a package's
    submodule through ``from . import``, imports inside functions."""
    graph = import_graph()
    assert "hpo_prune.settings" in graph["hpo_prune"]                  # from .settings import
    assert "hpo_prune.trial" in graph["hpo_prune"]                     # inside __getattr__
    assert "hpo_prune.search.studies.space" in graph["hpo_prune.search.cli"]   # from . import space
    assert "hpo_prune.sources" in graph["hpo_prune.search.runner"]     # from .. import sources
    assert "hpo_prune.errors" in graph["analysis.load"]                # absolute, other package
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_type_checking_imports_are_counted():
    tree = ast.parse(textwrap.dedent("""
        from typing import TYPE_CHECKING
        import typing
        if TYPE_CHECKING:
            from .search import runner
        if typing.TYPE_CHECKING:
            from . import trial
        else:
            from . import files
        def f():
            from .pruning import schedules
    """))
    found = set().union(*(_targets("hpo_prune.errors", False, n) for n in _import_nodes(tree)))
    assert found == {"hpo_prune.search.runner", "hpo_prune.trial", "hpo_prune.files",
                     "hpo_prune.pruning.schedules"}


def test_the_settings_import_nothing_above_them():
    """hpo_prune/settings/ is the bottom of the graph: no registry, no layer it describes."""
    graph = import_graph()
    above = [f"{module} -> {target}" for module, targets in sorted(graph.items())
             if module.startswith("hpo_prune.settings") for target in sorted(targets)
             if not target.startswith("hpo_prune.settings") and target != "hpo_prune.errors"]
    assert not above, "the settings import upward: " + ", ".join(above)


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


TOP = ("hpo_prune.search.", "hpo_prune.export.")  # the commands above the library


def test_the_library_never_imports_the_search_or_the_analysis():
    """hpo_prune (outside hpo_prune/search/ and hpo_prune/export/) is what the search and the
    analysis build on."""
    graph = import_graph()
    upward = [f"{module} -> {target}" for module, targets in sorted(graph.items())
              if module.split(".")[0] == "hpo_prune"
              and not (module + ".").startswith(TOP)
              for target in sorted(targets)
              if (target + ".").startswith((*TOP, "analysis."))]
    assert not upward, "imports against the layering: " + ", ".join(upward)


def test_the_analysis_reads_what_a_search_wrote_not_the_search():
    """analysis/ reads results through hpo_prune/results/ and never imports the search."""
    graph = import_graph()
    into = [f"{module} -> {target}" for module, targets in sorted(graph.items())
            if module.split(".")[0] == "analysis" for target in sorted(targets)
            if (target + ".").startswith("hpo_prune.search.")]
    assert not into, "the analysis imports the search: " + ", ".join(into)


def test_the_results_package_sits_below_everything_that_trains():
    """hpo_prune/results/ imports only the shared rules and the settings."""
    graph = import_graph()
    allowed = ("hpo_prune.results", "hpo_prune.settings", "hpo_prune.errors", "hpo_prune.files",
               "hpo_prune.levels", "hpo_prune.objectives")
    above = [f"{module} -> {target}" for module, targets in sorted(graph.items())
             if module.startswith("hpo_prune.results") for target in sorted(targets)
             if not target.startswith(allowed)]
    assert not above, "hpo_prune/results imports upward: " + ", ".join(above)


def test_importing_the_analysis_loads_neither_torch_nor_the_search():
    """Reading a CSV must not pay for torch: every analysis module imported in a fresh
    interpreter leaves torch, Ray and hpo_prune.search out of sys.modules."""
    code = textwrap.dedent("""
        import importlib, pkgutil, sys
        import analysis, analysis.__main__
        for info in pkgutil.iter_modules(analysis.__path__):
            importlib.import_module("analysis." + info.name)
        import hpo_prune.export.choose
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "ray")
                       or m.startswith("hpo_prune.search"))
        print(len(heavy), heavy[:5])
    """)
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[0] == "0", run.stdout


def test_nothing_imports_the_export():
    """``python -m hpo_prune.export`` sits on top of everything: it picks a trial with the
    analysis's selection rule (the command's name is a contract, so it lives in hpo_prune/
    and is exempt from the library's rule above), and neither the library, the search nor
    the analysis may import it, so it can never close a cycle through them."""
    graph = import_graph()
    users = [f"{module} -> {target}" for module, targets in sorted(graph.items())
             if not (module + ".").startswith("hpo_prune.export.")
             for target in sorted(targets) if (target + ".").startswith("hpo_prune.export.")]
    assert not users, "imports of the export: " + ", ".join(users)


def test_no_source_file_is_ignored_by_git():
    """A source file that .gitignore hides (hpo_prune/data/ once matched a ``data/`` rule)
    works here and is missing from every clone."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    listed = subprocess.run(["git", "ls-files", "--others", "--ignored", "--exclude-standard",
                             "--", *PACKAGES, "search_spaces"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.split()
    hidden = [p for p in listed if "__pycache__" not in p and not p.endswith(".pyc")]
    assert not hidden, f"ignored by git, so missing from a clone: {hidden}"


# ------------------------------------------------------------------ package __all__
PUBLIC_PACKAGES = ["hpo_prune", "hpo_prune.settings", "hpo_prune.results", "hpo_prune.data",
                   "hpo_prune.training", "hpo_prune.sources",
                   "hpo_prune.pruning", "hpo_prune.search", "hpo_prune.search.studies",
                   "hpo_prune.search.tuning", "hpo_prune.export", "analysis"]


def test_every_package_is_checked_for_all():
    packages = sorted(name for name, (_, is_package) in MODULES.items() if is_package)
    assert packages == sorted(PUBLIC_PACKAGES)


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_package_all_names_resolve(package):
    module = importlib.import_module(package)
    assert "__all__" in vars(module), f"{package}/__init__.py defines no __all__"
    names = module.__all__
    assert len(set(names)) == len(names), f"{package}.__all__ repeats a name"
    missing = []
    for name in names:
        try:
            getattr(module, name)
        except AttributeError:
            missing.append(name)
    assert not missing, f"{package}.__all__ names what it does not hold: {missing}"


# ------------------------------------------------------------------ the wheel
SHIPPED = ("pyproject.toml", "README.md", "hpo_prune", "analysis", "search_spaces")
JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")

CHECK = """
import sys
from pathlib import Path

import hpo_prune
from hpo_prune.search.studies import space

site = Path(sys.argv[1]).resolve()
repo = Path(sys.argv[2]).resolve()
where = [Path(hpo_prune.__file__).resolve(), Path(space.__file__).resolve()]
paths = [space.resolve_path(None, "vgg16"), space.resolve_path(None, "mobilenet_v2")]
assert [p.name for p in paths] == ["vgg.yaml", "mobilenet.yaml"], paths
for name in ("vgg.yaml", "mobilenet.yaml", "filter.yaml", "paper_grid.yaml"):
    loaded = space.load(name, "vgg16")
    assert loaded.params or loaded.fixed or loaded.grid, name
    paths.append(loaded.path)
for path in where + [Path(p).resolve() for p in paths]:
    assert path.is_relative_to(site), f"{path} is not from the installed wheel"
    assert not path.is_relative_to(repo), f"{path} is from the repository"
print("ok", len(paths))
"""


def _status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--ignored", "--", "build",
                           "*.egg-info"], cwd=ROOT, capture_output=True, text=True).stdout


def test_wheel_finds_its_search_spaces_from_any_directory(tmp_path):
    before = _status()
    src = tmp_path / "src"  # a copy: building in place would leave build/ behind
    src.mkdir()
    for name in SHIPPED:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, src / name, ignore=JUNK)
        else:
            shutil.copy2(origin, src / name)
    dist, site, elsewhere = tmp_path / "dist", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    env = {**os.environ, "PIP_NO_INDEX": "1"}
    built = subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                                  str(dist), str(src)], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stdout + built.stderr
    wheels = list(dist.glob("hpo_prune-*.whl"))
    assert len(wheels) == 1, list(dist.iterdir())
    installed = subprocess.run(pip + ["install", "--no-deps", "-q", "--target", str(site),
                                      str(wheels[0])], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    run_env = {**os.environ, "PYTHONPATH": str(site)}
    run_env.pop("PYTHONSAFEPATH", None)
    run = subprocess.run([sys.executable, "-c", CHECK, str(site), str(ROOT)], cwd=elsewhere,
                         env=run_env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.split() == ["ok", "6"]
    assert _status() == before, "building the wheel left files in the repository"


# ------------------------------------------------------------------ the layout table (docs/architecture.md)
def _layout_paths() -> list[str]:
    """The backticked ``.py`` paths of docs/architecture.md's "## Layout" section (up to the
    next "## " heading), in order of first appearance."""
    import re

    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    start = text.find("\n## Layout\n")
    assert start >= 0, "docs/architecture.md has no '## Layout' section"
    body = text[start + len("\n## Layout\n"):]
    end = body.find("\n## ")
    body = body if end < 0 else body[:end]
    paths = []
    for path in re.findall(r"`([^`\s]+\.py)`", body):
        if path not in paths:
            paths.append(path)
    return paths


def test_the_layout_lists_every_module_in_import_order():
    """docs/architecture.md's Layout lists every module of PACKAGES (``__init__.py`` files
    aside) by its path, and no module before one it imports (a package's ``__init__`` counts
    as nothing)."""
    files = {name: path.relative_to(ROOT).as_posix()
             for name, (path, is_package) in MODULES.items() if not is_package}
    listed = _layout_paths()
    missing = sorted(set(files.values()) - set(listed))
    extra = sorted(set(listed) - set(files.values()))
    assert not missing and not extra, (f"docs/architecture.md's Layout misses modules: {missing}; "
                                       f"lists paths that are not modules: {extra}")
    position = {path: i for i, path in enumerate(listed)}
    wrong = [f"{files[module]} (listed before {files[target]}, which it imports)"
             for module, targets in sorted(import_graph().items()) if module in files
             for target in sorted(targets) if target in files
             and position[files[target]] > position[files[module]]]
    assert not wrong, "docs/architecture.md's Layout is out of import order: " + "; ".join(wrong)
