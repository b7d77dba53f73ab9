"""Starts the real ``otcd`` binary for the tests: ``otcd serve --market manual`` on a free port (``--listen
127.0.0.1:0``, the address read from its log) with a temporary data directory, its admin key read from
``admin-key.json``. ``OTCD_BIN`` names the binary; else the repository's target/release or target/debug."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import List, Optional

REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 60
#: Manual books stay fresh for a minute so a loaded machine cannot turn a trade test into a staleness test.
CONFIG = "max_book_age_ms = 60000\nsettlement_confirm_after_ms = 200\n"
#: Webhooks to the tests' own receiver on 127.0.0.1 (issue 17: loopback URLs only with this setting).
CONFIG_WEBHOOKS = CONFIG + "webhooks_allow_private = true\n"


def otcd_binary() -> str:
    explicit = os.environ.get("OTCD_BIN")
    if explicit:
        return explicit
    candidates = [REPO / "target" / profile / "otcd" for profile in ("release", "debug")]
    existing = [c for c in candidates if c.is_file()]
    if not existing:
        raise RuntimeError("no otcd binary: run `cargo build -p otcd` or set OTCD_BIN")
    return str(max(existing, key=lambda c: c.stat().st_mtime))  # the newest build


class Desk:
    def __init__(self, config: str = CONFIG, data_dir: Optional[Path] = None):
        self.scratch = Path(tempfile.mkdtemp(prefix="otcd-sdk-test-"))
        self.data_dir = data_dir or self.scratch / "desk"
        self.config_path = self.scratch / "otcd.toml"
        self.config_path.write_text(config)
        self.log: List[str] = []
        self.process: Optional[subprocess.Popen] = None
        self.address = ""

    def start(self) -> "Desk":
        env = dict(os.environ, OTCD_ENGINE_PREFAULT_MIB="0", RUST_LOG="info")
        self.process = subprocess.Popen(
            [otcd_binary(), "serve", "--data-dir", str(self.data_dir), "--listen", "127.0.0.1:0",
             "--market", "manual", "--config", str(self.config_path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
        found = threading.Event()

        def read() -> None:
            assert self.process is not None and self.process.stderr is not None
            for line in self.process.stderr:
                self.log.append(line)
                if "otcd listening" in line and not found.is_set():
                    match = re.search(r"address=(\S+)", line)
                    if match:
                        self.address = match.group(1)
                        found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(START_TIMEOUT_S):
            self.stop()
            raise RuntimeError("otcd did not start; log:\n" + "".join(self.log))
        key = json.loads((self.data_dir / "admin-key.json").read_text())
        self.admin_key_id, self.admin_secret = key["key_id"], key["secret"]
        return self

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self) -> "Desk":
        self.stop()
        return self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.scratch, ignore_errors=True)
