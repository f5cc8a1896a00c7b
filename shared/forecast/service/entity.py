"""What is forecast: a feeder or a region of the aggregates, on a 15-minute grid in naive UTC times."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

LEVELS = ("feeder", "region")
INTERVAL_MINUTES = 15
STEP = pd.Timedelta(minutes=INTERVAL_MINUTES)


@dataclass(frozen=True, order=True)
class Entity:
    """A feeder or a region (`level`) and its id."""

    level: str
    entity_id: str

    def __str__(self) -> str:
        return f"{self.level} {self.entity_id}"
