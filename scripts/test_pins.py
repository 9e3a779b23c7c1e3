"""Print the test tools' exact versions from uv.lock, one `name==version` a line.

`scripts/lock` feeds them to the lowest-bounds resolution as constraints, so that run
changes only the library's own dependencies (to their declared lower bounds) and keeps
the test tools CI already trusts. The benchmark peers are left out: the lowest-bounds run
does not run the benchmark tests.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS_GROUP = "test"
LEFT_OUT_GROUP = "bench"


def _direct_names(groups: dict[str, list[object]], group: str) -> list[str]:
    names: list[str] = []
    for item in groups[group]:
        if isinstance(item, dict):
            included = str(item["include-group"])
            if included != LEFT_OUT_GROUP:
                names += _direct_names(groups, included)
        else:
            names.append(re.split(r"[\[<>=;!~ ]", str(item), maxsplit=1)[0].lower())
    return names


def main() -> int:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    versions: dict[str, set[str]] = {}
    for package in lock["package"]:
        versions.setdefault(package["name"], set()).add(package["version"])
    for name in _direct_names(project["dependency-groups"], TOOLS_GROUP):
        found = versions.get(name.replace("_", "-"), set())
        if len(found) != 1:
            print(f"test_pins: {name} has {len(found)} versions in uv.lock", file=sys.stderr)
            return 1
        print(f"{name}=={found.pop()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
