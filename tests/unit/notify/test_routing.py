"""Routing: by event kind, severity, and feeder and region globs; each target once."""

from __future__ import annotations

import pytest

from shared.notify.config import Route
from shared.notify.routing import Target, route_matches, targets
from tests.unit.notify.factories import alert

URGENT = Route("urgent", ("hook", "mail"), ("control-room",), severities=frozenset({"critical", "emergency"}))
NORTH = Route("north", ("mail",), ("north-team",), regions=("north*",), feeders=("F-1?",))
CLEARED = Route("cleared", ("log",), ("journal",), events=frozenset({"cleared"}))


@pytest.mark.parametrize(
    ("route", "event", "matches"),
    [
        (URGENT, alert(severity="critical"), True),
        (URGENT, alert(severity="emergency"), True),
        (URGENT, alert(severity="warning"), False),
        (NORTH, alert(region="north-east", feeder_id="F-12"), True),
        (NORTH, alert(region="south", feeder_id="F-12"), False),
        (NORTH, alert(region="north", feeder_id="F-123"), False),
        (NORTH, alert(region=None, feeder_id="F-12"), False),
        (URGENT, alert(region=None, feeder_id=None), True),
        (CLEARED, alert("cleared"), True),
        (CLEARED, alert("raised"), False),
    ],
)
def test_route_matches(route: Route, event, matches: bool) -> None:
    assert route_matches(route, event) is matches


def test_targets_of_every_matching_route_in_file_order() -> None:
    found = targets([URGENT, NORTH, CLEARED], alert(severity="critical", region="north", feeder_id="F-12"))
    assert found == [Target(("hook", "mail"), "control-room"), Target(("mail",), "north-team")]
    assert found[0].primary == "hook"


def test_a_target_of_two_routes_is_served_once() -> None:
    twin = Route("twin", ("hook", "mail"), ("control-room", "duty"))
    assert targets([URGENT, twin], alert()) == [Target(("hook", "mail"), "control-room"),
                                                Target(("hook", "mail"), "duty")]


def test_no_route_no_target() -> None:
    assert targets([URGENT], alert(severity="info")) == []
