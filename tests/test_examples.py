"""The example programs in examples/ run as a newcomer would run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_runs(tmp_path: Path) -> None:
    """examples/quickstart.py saves, interrupts, recovers and leaves a database behind."""
    database = tmp_path / "quickstart.db"
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), str(database)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "interrupted: support/ticket-42 (2 messages" in result.stdout
    assert "still interrupted: 0" in result.stdout
    assert "crash history: [('SIGTERM during deploy', True)]" in result.stdout
    assert database.is_file()
