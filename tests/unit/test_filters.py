"""Trigger filters of local/eventing/filters.py: legacy `filter.attributes` and the `filters` dialects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from local.eventing.filters import FilterError, compile_filter, compile_trigger_filter

EVENT = {
    "specversion": "1.0",
    "id": "reading-1",
    "source": "/meters/42",
    "type": "smartgrid.reading.created",
    "region": "north",
}


def matches(spec: Mapping[str, Any], event: Mapping[str, str] = EVENT) -> bool:
    """Whether a Trigger with this spec lets the event through."""
    return compile_trigger_filter(spec)(event)


def legacy(**attributes: str) -> dict[str, Any]:
    """A Trigger spec with `filter.attributes`."""
    return {"filter": {"attributes": attributes}}


def filters(*entries: Mapping[str, Any]) -> dict[str, Any]:
    """A Trigger spec with a `filters` list."""
    return {"filters": list(entries)}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({}, True, id="no-filter"),
        pytest.param({"filter": None}, True, id="filter-null"),
        pytest.param({"filter": {}}, True, id="filter-empty"),
        pytest.param(legacy(), True, id="attributes-empty"),
        pytest.param(legacy(type="smartgrid.reading.created"), True, id="exact"),
        pytest.param(legacy(type="smartgrid.reading"), False, id="prefix-is-not-enough"),
        pytest.param(legacy(type="SmartGrid.Reading.Created"), False, id="case-sensitive"),
        pytest.param(legacy(type="smartgrid.reading.created", source="/meters/42"), True, id="all-listed"),
        pytest.param(legacy(type="smartgrid.reading.created", source="/meters/43"), False, id="one-differs"),
        pytest.param(legacy(region="north"), True, id="extension"),
        pytest.param(legacy(region="south"), False, id="extension-differs"),
        pytest.param(legacy(tariff="night"), False, id="absent-extension"),
        pytest.param(legacy(type=""), True, id="empty-matches-present"),
        pytest.param(legacy(tariff=""), True, id="empty-matches-absent"),
        pytest.param(legacy(tariff="", type="smartgrid.reading.created"), True, id="empty-and-exact"),
    ],
)
def test_legacy_attributes(spec: Mapping[str, Any], expected: bool) -> None:
    assert matches(spec) is expected


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param({"exact": {"type": "smartgrid.reading.created"}}, True, id="exact"),
        pytest.param({"exact": {"type": "smartgrid.reading"}}, False, id="exact-partial"),
        pytest.param({"exact": {"type": "SMARTGRID.READING.CREATED"}}, False, id="exact-case"),
        pytest.param({"exact": {"tariff": "night"}}, False, id="exact-missing"),
        pytest.param({"prefix": {"type": "smartgrid.reading"}}, True, id="prefix"),
        pytest.param({"prefix": {"type": "smartgrid.reading.created"}}, True, id="prefix-whole"),
        pytest.param({"prefix": {"type": "reading"}}, False, id="prefix-not-at-start"),
        pytest.param({"prefix": {"type": "SmartGrid"}}, False, id="prefix-case"),
        pytest.param({"prefix": {"tariff": ""}}, False, id="prefix-missing"),
        pytest.param({"suffix": {"type": ".created"}}, True, id="suffix"),
        pytest.param({"suffix": {"type": ".deleted"}}, False, id="suffix-differs"),
        pytest.param({"suffix": {"type": ".Created"}}, False, id="suffix-case"),
        pytest.param({"suffix": {"tariff": ""}}, False, id="suffix-missing"),
        pytest.param({"prefix": {"type": "smartgrid", "source": "/meters/"}}, True, id="map-is-anded"),
        pytest.param({"prefix": {"type": "smartgrid", "source": "/plants/"}}, False, id="map-one-fails"),
    ],
)
def test_string_dialects(entry: Mapping[str, Any], expected: bool) -> None:
    assert matches(filters(entry)) is expected


CREATED = {"exact": {"type": "smartgrid.reading.created"}}
DELETED = {"exact": {"type": "smartgrid.reading.deleted"}}
NORTH = {"exact": {"region": "north"}}
METERS = {"prefix": {"source": "/meters/"}}


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param({"all": [CREATED, NORTH, METERS]}, True, id="all-pass"),
        pytest.param({"all": [CREATED, DELETED]}, False, id="all-one-fails"),
        pytest.param({"all": []}, True, id="all-empty"),
        pytest.param({"any": [DELETED, CREATED]}, True, id="any-one-passes"),
        pytest.param({"any": [DELETED, {"exact": {"region": "south"}}]}, False, id="any-none-pass"),
        pytest.param({"not": CREATED}, False, id="not-match"),
        pytest.param({"not": DELETED}, True, id="not-mismatch"),
        pytest.param({"not": {"exact": {"tariff": "night"}}}, True, id="not-missing-attribute"),
        pytest.param({"not": {"not": CREATED}}, True, id="double-not"),
        pytest.param(
            {"all": [METERS, {"any": [DELETED, {"not": {"suffix": {"type": ".deleted"}}}]}]}, True, id="nested"
        ),
        pytest.param({"any": [{"all": [CREATED, DELETED]}, {"not": NORTH}]}, False, id="nested-false"),
    ],
)
def test_nesting(entry: Mapping[str, Any], expected: bool) -> None:
    assert matches(filters(entry)) is expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(filters(CREATED, NORTH, METERS), True, id="list-all-pass"),
        pytest.param(filters(CREATED, DELETED), False, id="list-is-anded"),
        pytest.param({"filters": [], "filter": {"attributes": {"type": "other"}}}, False, id="empty-list-uses-filter"),
        pytest.param({"filters": [], **legacy(region="north")}, True, id="empty-list-uses-filter-match"),
        pytest.param({"filters": []}, True, id="empty-list-alone"),
        pytest.param({"filters": [CREATED], **legacy(type="other")}, True, id="filters-win-over-filter"),
        pytest.param(
            {"filters": [DELETED], **legacy(type="smartgrid.reading.created")}, False, id="filters-win-reject"
        ),
    ],
)
def test_filters_list_and_precedence(spec: Mapping[str, Any], expected: bool) -> None:
    assert matches(spec) is expected


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        pytest.param({"cesql": "type = 'x'"}, "cesql", id="cesql"),
        pytest.param({"not": {"cesql": "type = 'x'"}}, "cesql", id="cesql-nested-not"),
        pytest.param({"all": [CREATED, {"cesql": "true"}]}, "cesql", id="cesql-nested-all"),
        pytest.param({"regex": {"type": ".*"}}, "regex", id="unknown-dialect"),
        pytest.param({"exact": {"type": "a"}, "prefix": {"type": "b"}}, "exactly one dialect", id="two-dialects"),
        pytest.param({"exact": {"type": "a"}, "extra": 1}, "extra", id="dialect-and-unknown"),
        pytest.param({}, "exactly one dialect", id="no-dialect"),
        pytest.param({"exact": {}}, "exact", id="empty-map"),
        pytest.param({"prefix": "smartgrid"}, "prefix", id="not-a-map"),
        pytest.param({"all": CREATED}, "list", id="all-not-a-list"),
        pytest.param({"any": [{"suffix": {}}]}, "suffix", id="bad-nested"),
    ],
)
def test_rejected_filters(entry: Mapping[str, Any], message: str) -> None:
    with pytest.raises(FilterError, match=message):
        compile_filter(entry)
    with pytest.raises(FilterError, match=message):
        compile_trigger_filter(filters(CREATED, entry))
