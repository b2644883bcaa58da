"""The step loop is shared by both drivers and imports neither: the local
runtime and the Celery workers depend on it, never the other way round."""

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2] / "lgdist"
DRIVERS = ("lgdist.local", "lgdist.distributed")


def _imported_modules(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_loop_package_imports_no_driver():
    for path in (ROOT / "loop").rglob("*.py"):
        bad = [m for m in _imported_modules(path) if m.startswith(DRIVERS)]
        assert not bad, f"{path.name} imports a driver: {bad}"


def test_drivers_do_not_import_each_other():
    for driver, other in (("local", "lgdist.distributed"), ("distributed", "lgdist.local")):
        for path in (ROOT / driver).rglob("*.py"):
            bad = [m for m in _imported_modules(path) if m.startswith(other)]
            assert not bad, f"lgdist/{driver}/{path.name} imports {bad}"


def test_importing_the_loop_loads_no_broker():
    code = "import sys, lgdist.loop, lgdist.loop.task_run; print(','.join(m for m in ('celery', 'kombu', 'redis') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
