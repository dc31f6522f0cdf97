"""What a scan did: the counts and failures a scan reports, shared by the scanner and its writer."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ScanReport:
    """What a scan did, for the CLI summary, the scans table and the dashboard."""

    new: int = 0
    changed: int = 0
    moved: int = 0
    returned: int = 0
    missing: int = 0
    failed: int = 0
    unchanged: int = 0
    duplicates: int = 0
    probed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason), at most 1000
    offline: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    unmounted: list[str] = field(default_factory=list)  # mount points inside libraries found empty
    duration: float = 0.0
