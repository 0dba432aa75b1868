"""`talkdesk-bridge demo --connector NAME` for every connector with a sandbox, as a newcomer
runs it: start the demo, run the `check` command its banner prints, expect a pass."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from talkdesk_sandbox import SANDBOXES
from tests._support import free_port, wait_healthy


@pytest.mark.parametrize("name", ["sql", *sorted(SANDBOXES)])
def test_the_printed_check_command_passes(name: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("TALKDESK_BRIDGE_")
    }
    env["TALKDESK_BRIDGE_SQL_URL"] = f"sqlite:///{tmp_path / 'demo.db'}"
    command = [sys.executable, "-m", "talkdesk_bridge", "demo", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--connector", name, "--contacts", "80"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    banner: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 90
        while not (banner and banner[-1].startswith("Check it:")):
            line = proc.stdout.readline()
            assert line and time.monotonic() < deadline, f"no check command: {banner}"
            banner.append(line)
        check = shlex.split(banner[-1].removeprefix("Check it:"))
        assert check[:2] == ["talkdesk-bridge", "check"]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            assert wait_healthy(client, proc).status_code == 200
        result = subprocess.run(
            [sys.executable, "-m", "talkdesk_bridge", *check[1:]],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stdout:
            proc.stdout.close()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " 0 failed" in result.stdout
