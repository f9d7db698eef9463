"""A wheel built from the repository works on its own, with no checkout and no alembic.ini."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from convstore._storage.migrate import head_revision

ROOT = Path(__file__).resolve().parent.parent

CONNECT = """
import asyncio, pathlib, convstore

async def main():
    async with convstore.connect("sqlite:///connected.db", migrate=True) as store:
        await store.save_snapshot("s1", [{"role": "user", "content": "from the wheel"}])
        snapshot = await store.restore_snapshot("s1")
    print(pathlib.Path(convstore.__file__).parent)
    print(snapshot.messages[0]["content"])

asyncio.run(main())
"""

#: docs/host-alembic.md's section for convstore in an application's alembic.ini.
HOST_INI = """
[convstore]
script_location = convstore:_migrations
path_separator = os
sqlalchemy.url = sqlite:///app.db
"""


def run(command: list[str | Path], cwd: Path, env: dict[str, str]) -> str:
    """Run a command that must succeed; its standard output."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
def test_an_installed_wheel_upgrades_runs_the_demo_and_migrates(tmp_path: Path) -> None:
    """A wheel installed in a new virtual environment, run outside the checkout, can
    `convstore upgrade` a new database, run `convstore demo`, migrate through an application's
    alembic.ini naming its migrations as a package resource, and `connect(migrate=True)`."""
    venv = tmp_path / "venv"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Nothing may lead back to the checkout or the test's own environment.
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("CONVSTORE_DATABASE_URL", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env |= {
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
    }

    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path, ROOT],
        tmp_path,
        env,
    )
    [wheel] = tmp_path.glob("convstore-*.whl")
    run([sys.executable, "-m", "venv", venv], tmp_path, env)
    run([venv / "bin" / "python", "-m", "pip", "install", "-q", wheel], tmp_path, env)

    upgraded = run(["convstore", "upgrade", "--url", "sqlite:///fresh.db"], elsewhere, env)
    assert f"to {head_revision()} (head)" in upgraded
    assert "up to date" in run(
        ["convstore", "check", "--url", "sqlite:///fresh.db"], elsewhere, env
    )

    demo = run(["convstore", "demo"], elsewhere, env)
    assert "still interrupted: none" in demo
    assert (elsewhere / "convstore-demo.db").is_file()

    # An application's alembic.ini names the packaged migrations as a package resource.
    hosted = tmp_path / "hosted"
    hosted.mkdir()
    (hosted / "alembic.ini").write_text(HOST_INI)
    run(["alembic", "-n", "convstore", "upgrade", "head"], hosted, env)
    assert "up to date" in run(["convstore", "check", "--url", "sqlite:///app.db"], hosted, env)

    package, content = run(["python", "-c", CONNECT], elsewhere, env).splitlines()
    assert Path(package).is_relative_to(venv)  # the wheel's convstore, not the checkout's
    assert content == "from the wheel"
    assert not list(elsewhere.glob("alembic.ini"))
