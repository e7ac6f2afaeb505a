"""The tests mirror ``cachewise/`` (the rule is written at the top of ``tests/conftest.py``).

Three checks, all from the source: every test module sits in the folder of a cachewise package
or module (or on a short allow-list of cross-cutting tests); every test module uses the package
its folder names (imports it, or runs the ``cachewise`` command of that name); and no file under
``tests/`` imports ``benchmarks``.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import cachewise

TESTS = Path(__file__).resolve().parent
PACKAGE = Path(cachewise.__file__).resolve().parent

# Tests about the repository as a whole; nothing else may sit at tests/ itself.
ROOT_TESTS = {
    "test_citations.py",  # every API fact cited points into docs/api-notes.md
    "test_layers.py",  # the send path's import graph
    "test_imports.py",  # what `import cachewise` and the wrap path load
    "test_layout.py",  # this file
    "test_notebooks.py",  # the notebooks, executed on the demo ledger
    "test_public_api.py",  # every public name, across packages
    "test_readme.py",  # the README's example, as written
}
# Folders of shared helpers, not named after a package; they hold no tests.
CROSS_CUTTING = {"strategies", "fixtures"}
# A folder whose tests may reach their subject through a second module.
ALSO_COVERS = {"integrations": {"wrap"}}  # cachewise/wrap.py is the integrations' front door

# Tests still in a folder that is not their package's: tests/reports and tests/ledger were being
# edited on other branches when the rest moved. Each entry names where the test belongs; once it is
# moved there (with git mv), delete its entry (the test below fails until then).
PENDING: dict[str, str] = {}


def _test_modules() -> list[Path]:
    return sorted(p for p in TESTS.rglob("test_*.py") if ".venv" not in p.parts)


def _is_cachewise_unit(parts: tuple[str, ...]) -> bool:
    """``("planner",)`` is ``cachewise/planner/``; ``("tokens",)`` is ``cachewise/tokens.py``.

    A package may be a namespace package (``cachewise/integrations/`` has no ``__init__.py``).
    """
    path = PACKAGE.joinpath(*parts)
    return any(path.glob("*.py")) if path.is_dir() else path.with_suffix(".py").is_file()


def _where_wrong(relative: Path) -> str | None:
    """Why ``relative`` (a test module's path under tests/) breaks the folder rule, or None."""
    folders = relative.parts[:-1]
    if not folders:
        return None if relative.name in ROOT_TESTS else "a root test not on the ROOT_TESTS list"
    if folders[0] in CROSS_CUTTING:
        return f"tests/{folders[0]}/ holds shared helpers, not tests"
    if not _is_cachewise_unit(folders):
        return f"cachewise/{'/'.join(folders)} is neither a package nor a module"
    if folders == ("cli",):
        command_module = relative.stem.removeprefix("test_")
        if not (PACKAGE / "cli" / f"{command_module}.py").is_file():
            return f"tests/cli/ is named after cachewise/cli/ modules; there is no cli/{command_module}.py"
    return None


def test_every_test_module_sits_in_its_package_folder() -> None:
    modules = _test_modules()
    assert len(modules) > 50
    wrong = {str(p.relative_to(TESTS)): _where_wrong(p.relative_to(TESTS)) for p in modules}
    assert {path: why for path, why in wrong.items() if why} == {}


def test_the_allow_lists_are_real() -> None:
    for name in ROOT_TESTS:
        assert (TESTS / name).is_file(), name
        assert not _is_cachewise_unit((name.removeprefix("test_").removesuffix(".py"),)), (
            f"{name} is named after a cachewise module: it belongs in that module's folder"
        )
    for folder in CROSS_CUTTING:
        assert (TESTS / folder / "__init__.py").is_file(), folder
        assert not _is_cachewise_unit((folder,)), folder
    for old in PENDING:
        assert (TESTS / old).is_file(), f"{old} has moved: delete its PENDING entry"


def _unit_of(obj: object, fallback: str) -> str:
    """The cachewise subpackage or top-level module a public object comes from."""
    module = getattr(obj, "__module__", None) or getattr(obj, "__name__", "")
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "cachewise" else fallback


def _used_units(tree: ast.Module) -> set[str]:
    """The cachewise packages and modules a test module uses, and the commands it runs."""
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "cachewise" and len(parts) > 1:
                    used.add(parts[1])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[0] != "cachewise":
                continue
            if len(parts) > 1:
                used.add(parts[1])
            else:  # from cachewise import price: where does price come from?
                used.update(_unit_of(_member(a.name), a.name) for a in node.names)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "cachewise" and hasattr(cachewise, node.attr):
                used.add(_unit_of(getattr(cachewise, node.attr), node.attr))
        elif isinstance(node, ast.Call):
            used.update(_command_run(node))
    return used


def _command_run(call: ast.Call) -> set[str]:
    """``CliRunner().invoke(cli, ["demo", ...])`` runs the ``cachewise demo`` command: {"demo"}."""
    func, args = call.func, call.args
    if not (isinstance(func, ast.Attribute) and func.attr == "invoke" and len(args) > 1):
        return set()
    words = args[1].elts if isinstance(args[1], ast.List) else []
    first = words[0] if words else None
    return {first.value} if isinstance(first, ast.Constant) and isinstance(first.value, str) else set()


def _strays() -> dict[str, list[str]]:
    """Test modules that never touch the package their folder names, with what they do use."""
    out: dict[str, list[str]] = {}
    for path in _test_modules():
        relative = path.relative_to(TESTS)
        if len(relative.parts) == 1:
            continue
        folder = relative.parts[0]
        used = _used_units(ast.parse(path.read_text(encoding="utf-8")))
        if not ({folder} | ALSO_COVERS.get(folder, set())) & used:
            out[relative.as_posix()] = sorted(used)
    return out


def _member(name: str) -> object:
    """``cachewise.<name>``: a public name, or a submodule not imported yet."""
    if hasattr(cachewise, name):
        return getattr(cachewise, name)
    return importlib.import_module(f"cachewise.{name}")


def test_every_test_module_uses_the_package_its_folder_names() -> None:
    strays = _strays()
    assert set(strays) == set(PENDING), {k: v for k, v in strays.items() if k not in PENDING}


def test_the_stray_check_catches_a_stray() -> None:
    tree = ast.parse("from cachewise import PriceBook\nfrom cachewise.usage import Usage\n")
    assert _used_units(tree) == {"pricing", "usage"}
    command = ast.parse("CliRunner().invoke(cli, ['demo', '--db', 'x'])")
    assert _used_units(command) == {"demo"}


def _imports(source: str) -> set[str]:
    """Every module ``source`` names in an import, an ``import_module`` call or ``pytest_plugins``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.module:
                names.add("." * node.level + node.module)
            names.update("." * node.level + alias.name for alias in node.names if not node.module)
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names.add(arg.value)
        elif isinstance(node, ast.Assign) and _names_plugins(node):
            items = node.value.elts if isinstance(node.value, ast.List | ast.Tuple) else [node.value]
            names.update(i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str))
    return names


def _names_plugins(node: ast.Assign) -> bool:
    return any(isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in node.targets)


def test_no_test_imports_the_benchmarks() -> None:
    files = sorted(TESTS.rglob("*.py"))
    assert len(files) > 50
    for path in files:
        relative = str(path.relative_to(TESTS))
        source = path.read_text(encoding="utf-8")
        for name in _imports(source):
            assert name.split(".")[0] != "benchmarks", (relative, name)
        if path != Path(__file__).resolve():  # a sys.path trick that would reach the folder
            assert "sys.path" not in source or "benchmarks" not in source, relative


def test_the_benchmarks_check_sees_every_way_in() -> None:
    ways = [
        "import benchmarks.bench_planner",
        "from benchmarks import bench_planner",
        "from benchmarks.common import run",
        "importlib.import_module('benchmarks.bench_planner')",
        "__import__('benchmarks')",
        "pytest_plugins = ['tests.fixtures.planning', 'benchmarks.fixtures']",
    ]
    for source in ways:
        assert any(n.split(".")[0] == "benchmarks" for n in _imports(source)), source
    assert not any(n.split(".")[0] == "benchmarks" for n in _imports("import cachewise.workloads"))
