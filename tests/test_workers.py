"""`serve --workers N`: several processes behind one port, metrics added up across them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests._support import free_port, wait_healthy


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_two_workers_serve_and_count_together(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "TALKDESK_BRIDGE_SQL_URL": f"sqlite:///{tmp_path / 'w.db'}",
        "TALKDESK_BRIDGE_SQL_API_TOKENS": "worker-token",
        "TALKDESK_BRIDGE_CONNECTORS": "sql",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    (tmp_path / "metrics").mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "talkdesk_bridge", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=base, timeout=5) as client:
            assert wait_healthy(client, proc).status_code == 200
            while len(children(proc.pid)) < 3 and time.monotonic() < deadline:
                time.sleep(0.2)  # uvicorn's supervisor: a resource tracker and the workers
            workers = children(proc.pid)
            assert len(workers) >= 2, workers
            for _ in range(40):
                # A new connection each time, so the kernel spreads them over the workers.
                with httpx.Client(base_url=base, timeout=5) as one:
                    r = one.post("/sql/auth_validation", json={"auth": {"api_token": "x"}})
                    assert r.status_code == 401
            metrics = client.get("/metrics").text
        match = re.search(
            r'talkdesk_bridge_requests_total\{connector="sql",endpoint="auth_validation",'
            r'status="401"\} ([0-9.]+)',
            metrics,
        )
        assert match and float(match.group(1)) == 40.0
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        if proc.stderr:
            proc.stderr.close()
