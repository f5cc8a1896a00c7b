"""What a running `smartgrid up` tells other commands: its endpoints and the domain DSNs.

Written to `<state dir>/platform.json` (mode 0600, it holds the local passwords) once `up` is
ready, removed when it stops. `smartgrid dlq`, `users`, `devices` and `audit` read it when their
variables are not set.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

STATE_FILE = "platform.json"


class PlatformNotRunning(RuntimeError):
    """Raised when a command needs a running `smartgrid up` and finds none."""


@dataclass(frozen=True)
class PlatformState:
    """Endpoint name -> URL (`broker` and `auth` included), domain -> DSN, and the command line's OAuth
    client (`client_id`, `client_secret`) of a running platform."""

    endpoints: dict[str, str]
    dsns: dict[str, str]
    client: dict[str, str] = field(default_factory=dict)

    def save(self, state_dir: Path) -> Path:
        """Write the state file; return its path."""
        path = state_dir / STATE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            json.dump({"endpoints": self.endpoints, "dsns": self.dsns, "client": self.client}, stream, indent=2)
        return path

    @classmethod
    def load(cls, state_dir: Path) -> PlatformState:
        """Read the state file of a running platform; raises PlatformNotRunning."""
        path = state_dir / STATE_FILE
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            raise PlatformNotRunning(
                f"expected a running `smartgrid up` (its state file {path}), found none; "
                "start it, or set K_SINK and SMARTGRID_DSN_SMARTGRID"
            ) from None
        return cls(document["endpoints"], document["dsns"], document.get("client", {}))
