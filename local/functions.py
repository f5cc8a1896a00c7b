"""The functions of the platform: one folder with a `main.py` per Knative Service, run by functions-framework.

Convention: the folder name is the Knative Service name, and `main.py` defines `handler`, an async
`@functions_framework.aio.http` function. Locally each runs as
`functions-framework --asgi --source <folder>/main.py --target handler` from this interpreter's bin folder.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from local.servers.process import ManagedProcess

TARGET = "handler"
_SERVICE_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


class FunctionsDirError(ValueError):
    """Raised when the functions folder is missing or holds a function whose name Knative would refuse."""


@dataclass(frozen=True)
class Function:
    """One function: its Knative Service name and its `main.py`."""

    name: str
    source: Path

    def argv(self, port: int, host: str = "127.0.0.1") -> list[str]:
        """The functions-framework command that serves this function on host:port."""
        bin_dir = Path(sys.executable).parent
        return [
            str(bin_dir / "functions-framework"), "--asgi",
            "--source", str(self.source), "--target", TARGET,
            "--host", host, "--port", str(port),
        ]

    def environment(self, sink: str, extra: Mapping[str, str]) -> dict[str, str]:
        """The process environment: ours, plus `extra`, plus Knative's `K_SINK` (SinkBinding) and `K_SERVICE`."""
        # Passed through to the child unread, as a container would inherit its image's environment.
        return {**os.environ, **extra, "K_SINK": sink, "K_SERVICE": self.name, "PYTHONUNBUFFERED": "1"}

    def process(self, port: int, sink: str, extra: Mapping[str, str], log_path: Path) -> ManagedProcess:
        """A ManagedProcess that serves this function on 127.0.0.1:port, logging to `log_path`."""
        return ManagedProcess(self.name, self.argv(port), log_path, self.environment(sink, extra))


def discover(functions_dir: Path) -> list[Function]:
    """Every folder of `functions_dir` that has a `main.py`, sorted by name."""
    if not functions_dir.is_dir():
        raise FunctionsDirError(
            f"SMARTGRID_FUNCTIONS_DIR: expected a folder of functions at {functions_dir}, found none"
        )
    functions = []
    for main in sorted(functions_dir.glob("*/main.py")):
        name = main.parent.name
        if not _SERVICE_NAME.fullmatch(name):
            raise FunctionsDirError(
                f"{main.parent}: expected a Knative Service name as folder name (lowercase letters, digits "
                f"and '-', starting with a letter, at most 63 characters), found {name!r}"
            )
        functions.append(Function(name, main.resolve()))
    return functions
