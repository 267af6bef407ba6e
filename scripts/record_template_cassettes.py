"""Re-record the template's cassettes (templates/my_api/cassettes/my_api/*.yaml).

The template's tests replay these cassettes, so after changing the template's fake
server or connector, run `python scripts/record_template_cassettes.py`. It creates the
`my_api` connector from the template in a temporary copy of the repository, records
its cassettes there from its fake server (`python -m tests.record my_api`), and copies
them back into the template.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = "my_api"
#: what a copy of the repository leaves out: environments (`make test-wheel` makes one
#: under build/), caches, local databases
IGNORED = shutil.ignore_patterns(
    ".git",
    ".venv*",
    "build",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "*.egg-info",
    "*.duckdb",
)


def main() -> int:
    target = ROOT / "templates" / TEMPLATE / "cassettes" / TEMPLATE
    with tempfile.TemporaryDirectory(prefix="template-record-") as scratch:
        copy = Path(scratch) / "repo"
        shutil.copytree(ROOT, copy, ignore=IGNORED)
        shutil.rmtree(copy / "templates" / TEMPLATE / "cassettes", ignore_errors=True)
        env = {**os.environ, "PYTHONPATH": str(copy), "RUNTIME__DLTHUB_TELEMETRY": "false"}
        for command in (["connectors", "new", TEMPLATE], ["tests.record", TEMPLATE]):
            subprocess.run([sys.executable, "-m", *command], cwd=copy, env=env, check=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(copy / "cassettes" / TEMPLATE, target)
    for path in sorted(target.iterdir()):
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
