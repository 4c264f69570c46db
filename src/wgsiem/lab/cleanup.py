"""Remove labs left by killed test runs (``python -m wgsiem.lab.cleanup``).

Test labs are named ``t`` + five base-36 characters (see tests/conftest.py). A test run killed before its
teardown leaves their namespaces, wireguard-go processes and sockets behind; the next run would collide.
Only test-named labs are touched, never a named lab such as ``demo``.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from wgsiem.lab.netns import list_namespaces
from wgsiem.lab.runtime import Lab
from wgsiem.lab.topology import LabSpec

TEST_LAB = re.compile(r"wgsiem-(t[0-9a-z]{5})-(?:gw|c[0-9]+)")


def main() -> int:
    names = sorted({m.group(1) for ns in list_namespaces() if (m := TEST_LAB.fullmatch(ns))})
    for name in names:
        with tempfile.TemporaryDirectory() as d:
            Lab(LabSpec(name=name, clients=0), Path(d)).down()
        print(f"removed stale test lab {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
