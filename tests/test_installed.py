"""The installed package, as a Docker image or `pip install .` gives it: built as a wheel, installed
into a fresh virtual environment and run from an empty directory, as an unprivileged user when the
tests run as root (site-packages is then read-only to it, as in the image).

The wheel is installed without its dependencies; the fresh environment reads them from the
development environment's site-packages (a plain ``.pth`` path, so its editable install of this
project is not activated): the same versions the rest of the suite runs against, in seconds rather
than a minute of downloads. The test checks that ``bridge`` is imported from the wheel, and that the
command is found by its name, ``chatbridge``, on the environment's ``PATH`` (not iproute2's ``bridge``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fakes.server import free_port
from tests.harness import eventually
from tests.proc import ROOT
from tests.widget import answer, send, start

Installed = tuple[Path, dict[str, Any]]  # the fresh environment's bin directory, how to run as the user


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    """(the fresh environment's bin directory, the ``subprocess`` arguments running as the test user)."""
    base = Path(tempfile.mkdtemp(prefix="bridge-installed-", dir="/tmp"))
    try:
        wheels = base / "wheels"
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
             "-w", str(wheels), str(ROOT)],
            check=True, timeout=300, cwd=base,
        )  # fmt: skip
        [wheel] = wheels.glob("channel_bridge-*.whl")
        venv = base / "venv"
        python, as_user = _interpreter()
        subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
        subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
             "--quiet", "--no-deps", "--no-compile", str(wheel)],
            check=True, timeout=300,
        )  # fmt: skip
        [site] = (venv / "lib").glob("python3*/site-packages")
        (site / "dev-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        os.chmod(base, 0o755)
        yield venv / "bin", as_user
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _interpreter() -> tuple[str, dict[str, Any]]:
    """This Python (or the system's build of the same version, when this one lives where the
    unprivileged user cannot reach, such as /root/.pyenv) and the ``subprocess`` arguments that run
    a command as that user. Not root: ourselves."""
    base = getattr(sys, "_base_executable", sys.executable)
    if os.geteuid() != 0:
        return base, {}
    nobody = pwd.getpwnam("nobody")
    as_user: dict[str, Any] = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for python in (base, f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        try:
            subprocess.run([python, "-c", ""], capture_output=True, check=True, **as_user)
        except (OSError, subprocess.CalledProcessError):
            continue
        return python, as_user
    raise AssertionError(f"no {version} the 'nobody' user can run")


@pytest.fixture
def empty_dir(installed: Installed) -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="bridge-cwd-", dir="/tmp"))
    if installed[1]:
        shutil.chown(directory, "nobody")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _env(bin_dir: Path, port: int) -> dict[str, str]:
    """As after `. venv/bin/activate`: the environment's bin directory first on PATH."""
    path = f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin"  # where iproute2 puts its `bridge`
    return {"PATH": path, "PORT": str(port), "LOG_FORMAT": "json", "HOME": "/nonexistent"}


def _run(installed: Installed, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    bin_dir, as_user = installed
    environ = _env(bin_dir, free_port()) | env
    command = shutil.which("chatbridge", path=environ["PATH"])
    assert command == str(bin_dir / "chatbridge"), f"chatbridge on PATH: {command}"
    return subprocess.run(
        ["chatbridge", *args],
        cwd=cwd, env=environ, capture_output=True, text=True, timeout=60, **as_user,
    )  # fmt: skip


def test_the_installed_command_migrates_from_an_empty_directory(installed, empty_dir):
    bin_dir, as_user = installed
    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import bridge; print(bridge.__file__)"],
        cwd=empty_dir, capture_output=True, text=True, check=True, **as_user,
    )  # fmt: skip
    assert where.stdout.startswith(str(bin_dir.parent)), where.stdout  # the wheel, not the source tree

    version = _run(installed, empty_dir, "--version")
    assert version.returncode == 0 and version.stdout.startswith("channel-bridge "), version.stderr
    assert not (bin_dir / "bridge").exists()  # the old name is gone: it is iproute2's command

    missing = _run(installed, empty_dir, "dead-letters", "list")
    assert missing.returncode == 2 and "chatbridge migrate" in missing.stderr
    migrated = _run(installed, empty_dir, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.startswith(f"created the database schema in {empty_dir / 'bridge.db'}")
    assert (empty_dir / "bridge.db").is_file()
    listed = _run(installed, empty_dir, "dead-letters", "list")
    assert (listed.returncode, listed.stdout.strip()) == (0, "no dead letters"), listed.stderr


async def test_the_installed_bridge_serves_the_widget_with_the_echo_bot(installed, empty_dir):
    bin_dir, as_user = installed
    port = free_port()
    log = empty_dir / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["chatbridge", "serve"], cwd=empty_dir, env=_env(bin_dir, port), stdout=out,
            stderr=subprocess.STDOUT, **as_user,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(base_url=url, timeout=aiohttp.ClientTimeout(total=5)) as http:

            async def ready() -> bool:
                assert process.poll() is None, log.read_text()
                try:
                    async with http.get("/readyz") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(ready, 30, "the installed bridge to be ready")
            async with http.get("/") as page:
                assert page.status == 200 and "open-chat-studio-widget" in await page.text()
            session_id = (await start(http))["session_id"]  # type: ignore[arg-type]
            task_id = await send(http, session_id, "hello from the wheel")  # type: ignore[arg-type]
            reply = await answer(http, session_id, task_id)  # type: ignore[arg-type]
            assert reply["message"]["content"] == "echo: hello from the wheel"
    finally:
        process.terminate()
        process.wait(30)
    assert process.returncode == 0, log.read_text()
    assert "Traceback" not in log.read_text()
    assert (empty_dir / "bridge.db").is_file()
