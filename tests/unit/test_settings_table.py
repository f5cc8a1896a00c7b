"""Every variable shared/config.py reads is in the README's configuration table, and nothing else is."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_readme_table_lists_exactly_the_variables_read() -> None:
    read = set(re.findall(r'"((?:SMARTGRID|K)_[A-Z_]+?)_?"', (REPO / "shared" / "config.py").read_text()))
    read = {"SMARTGRID_DSN_<DOMAIN>" if name == "SMARTGRID_DSN" else name for name in read}
    section = (REPO / "README.md").read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `((?:SMARTGRID|K)_[A-Z_<>]+)` \|", section, flags=re.MULTILINE))
    assert documented == read
