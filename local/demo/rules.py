"""The alert rules of a demo run: the shipped ones, with the missing-data lateness fit to its time compression.

A demo compresses a simulated day into about a minute, so the few seconds by which one path (a
partition, HTTP against Kafka) lags another are hours of simulated time. Missing data is judged on
event time, so the run allows each device LAG_ALLOWANCE_S of wall time, in simulated time, before
counting it as silent (at most MAX_LATENESS_S); every other rule is left as shipped.
"""

from __future__ import annotations

from pathlib import Path

import yaml

LAG_ALLOWANCE_S = 5.0
MAX_LATENESS_S = 2 * 3600.0


def demo_rules(shipped: Path, folder: Path, simulated_s: float, duration_s: float) -> tuple[Path, float]:
    """Write the run's rules file into `folder`; return it and the missing-data lateness it sets (s)."""
    compression = simulated_s / duration_s if duration_s > 0 else float("inf")
    lateness_s = min(MAX_LATENESS_S, LAG_ALLOWANCE_S * compression)
    document = yaml.safe_load(shipped.read_text())
    for rule in document["rules"]:
        if rule.get("kind") == "missing_data":
            rule["lateness"] = f"PT{lateness_s:.0f}S"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "demo-alert-rules.yaml"
    path.write_text(f"# The rules of {shipped}, missing-data lateness {lateness_s:.0f} s for this demo's "
                    f"time compression (x{compression:.0f}).\n" + yaml.safe_dump(document, sort_keys=False))
    return path, lateness_s
