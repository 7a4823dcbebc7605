"""Run ``muse serve`` as a child process: for tests, the benchmark and the demo.

The child writes a ready file (bound address and ports) once health is SERVING; this waits for
it, and stops the child with SIGTERM (graceful drain) or SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from muse.core.config_loader import config_to_dict, dump_toml
from serving.serving_config import ServingConfig


class ServerProcess:
    """A ``muse serve`` child process; a context manager that drains it on exit."""

    def __init__(
        self,
        config_path: str | Path,
        overrides: list[str] | None = None,
        log_path: str | Path | None = None,
        ready_timeout: float = 180.0,
        program: list[str] | None = None,
    ) -> None:
        """``program``: the command to run instead of ``python -m muse.cli serve``; it gets the
        same ``--config``, ``--ready-file`` and ``--set`` arguments (a benchmark's own host)."""
        self.program = program or [sys.executable, "-m", "muse.cli", "serve"]
        self.config_path = Path(config_path)
        self.overrides = list(overrides or [])
        self._scratch = Path(tempfile.mkdtemp(prefix="muse-serve-"))
        self.log_path = Path(log_path) if log_path is not None else self._scratch / "server.log"
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.ready: dict[str, Any] = {}
        self._log: IO[bytes] | None = None

    @classmethod
    def from_config(
        cls, config: ServingConfig, directory: str | Path, **options: Any
    ) -> ServerProcess:
        """Write ``config`` as TOML under ``directory`` and make a process for it."""
        path = Path(directory) / "serving.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_toml(config_to_dict(config)))
        return cls(path, **options)

    @property
    def address(self) -> str:
        return str(self.ready["address"])

    @property
    def metrics_port(self) -> int:
        return int(self.ready["metrics_port"])

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> ServerProcess:
        """Spawn the server and wait until it serves; raises RuntimeError with its log otherwise."""
        ready_file = self._scratch / "ready.json"
        ready_file.unlink(missing_ok=True)
        command = [*self.program, "--config", str(self.config_path)]
        command += ["--ready-file", str(ready_file)]
        for override in self.overrides:
            command += ["--set", override]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in wait)
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.ready_timeout
        while not ready_file.exists():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"server not ready after {self.ready_timeout} s:\n{self.log_tail()}"
                )
            time.sleep(0.05)
        self.ready = json.loads(ready_file.read_text())
        return self

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM (graceful drain), then wait; returns the exit code (SIGKILL after ``timeout``)."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> int:
        """SIGKILL: no drain, no flush; what was acknowledged must survive this."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        return self.wait(30.0)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> ServerProcess:
        return self.start() if self.process is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.terminate()
