"""The engine is pure: importing it pulls in no broker, database or network
library, so its tests run without services."""

import subprocess
import sys

# (langchain-core itself pulls in an HTTP client through langsmith; that is
# not the engine doing I/O, so only the storage and broker stacks are listed.)
FORBIDDEN = ["celery", "kombu", "sqlalchemy", "redis", "psycopg", "sqlite3", "billiard", "amqp"]


def test_engine_imports_no_io_library():
    code = (
        "import sys, lgdist.engine, lgdist.engine.execute, lgdist.engine.channels;"
        f"bad=[m for m in {FORBIDDEN!r} if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"engine imported I/O libraries: {out.stdout.strip()}"


def test_engine_modules_do_not_import_io_libraries_textually():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2] / "lgdist" / "engine"
    for path in root.rglob("*.py"):
        text = path.read_text()
        for lib in FORBIDDEN:
            assert f"import {lib}" not in text and f"from {lib}" not in text, f"{path} imports {lib}"
