"""A real WireGuard lab (wireguard-go in network namespaces) for component tests, fixtures and demos.

``topology`` is the pure addressing plan, ``runtime.Lab`` builds and drives it, ``cli.lab`` is the
``wgsiem lab`` command group.
"""

from wgsiem.lab.runtime import Lab
from wgsiem.lab.topology import LabError, LabSpec

__all__ = ["Lab", "LabError", "LabSpec"]
