"""SimBench's LoadProfile.csv: extracted once from the downloaded wheel, then taken from the cache."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from local import simbench


def test_the_csv_is_extracted_from_the_wheel_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = tmp_path / "simbench-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(simbench.MEMBER, "time;H0-A_pload\n01.01.2016 00:00;0.1\n")
    downloads: list[Path] = []
    monkeypatch.setattr(simbench, "_download_wheel", lambda directory: downloads.append(directory) or wheel)

    path = simbench.simbench_load_profiles(tmp_path / "cache")
    assert path.read_text().startswith("time;H0-A_pload")
    assert simbench.simbench_load_profiles(tmp_path / "cache") == path
    assert len(downloads) == 1


def test_a_wheel_without_the_csv_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = tmp_path / "simbench-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("simbench/__init__.py", "")
    monkeypatch.setattr(simbench, "_download_wheel", lambda directory: wheel)
    with pytest.raises(simbench.DatasetFetchError, match="LoadProfile.csv"):
        simbench.simbench_load_profiles(tmp_path / "cache")
