"""Loading the rules file: every mistake is named with its file, rule and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.alerting.rules import RulesError, RuleSet
from shared.config import Settings


def test_the_shipped_rules_load() -> None:
    rules = RuleSet.load(Settings().rules_file)
    assert {rule.kind for rule in rules.rules} == {"threshold", "reverse_flow", "missing_data", "flatline", "spike"}
    voltage = next(rule for rule in rules.rules if rule.id == "voltage-en50160")
    assert voltage.window_s == 600 and [level.severity for level in voltage.levels] == ["warning", "critical"]


def threshold(**changes: Any) -> dict[str, Any]:
    rule = {"id": "r", "kind": "threshold", "metric": "voltage",
            "levels": [{"severity": "warning", "high": {"raise": 253, "clear": 250}}]}
    rule.update(changes)
    return {"rules": [rule]}


@pytest.mark.parametrize(("document", "message"), [
    ([], "expected a mapping with a list `rules`"),
    ({"rules": [{"kind": "threshold"}]}, "rules[0].id: expected a non-empty string"),
    (threshold(kind="magic"), "(r).kind: expected one of threshold"),
    (threshold(metric="colour"), "(r).metric: expected one of voltage"),
    (threshold(levels=[]), "(r).levels: expected at least one level"),
    (threshold(levels=[{"severity": "loud", "high": {"raise": 1, "clear": 0}}]), "levels[0].severity"),
    (threshold(levels=[{"severity": "warning", "high": {"raise": 253, "clear": 255}}]),
     "levels[0].high.clear: expected a level at or below raise (253.0), found 255.0"),
    (threshold(levels=[{"severity": "warning", "low": {"raise": 207}}]), "levels[0].low: expected a mapping"),
    (threshold(window="ten minutes"), "(r).window: expected an ISO-8601 duration"),
    (threshold(intervals=3), "expected only the fields"),
    ({"rules": [threshold()["rules"][0], threshold()["rules"][0]]}, "expected unique rule ids, found r"),
    ({"rules": [{"id": "m", "kind": "missing_data", "intervals": 0}]}, "(m).intervals: expected a whole number"),
    ({"rules": [{"id": "f", "kind": "flatline"}]}, "(f).metric: expected one of"),
    ({"rules": [{"id": "x", "kind": "spike", "metric": "voltage", "applies_to": ["cat"]}]}, "(x).applies_to"),
])
def test_mistakes_are_named(document: Any, message: str) -> None:
    with pytest.raises(RulesError) as caught:
        RuleSet.parse(document, "rules.yaml")
    assert message in str(caught.value) and str(caught.value).startswith("rules.yaml")


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "rules.yaml"
    broken.write_text("rules: [")
    with pytest.raises(RulesError, match=str(broken)):
        RuleSet.load(broken)
    with pytest.raises(RulesError, match="missing.yaml"):
        RuleSet.load(tmp_path / "missing.yaml")
