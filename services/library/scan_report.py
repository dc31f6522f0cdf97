"""What a scan did: the counts and failures a scan reports, shared by the scanner and its writer."""

from __future__ import annotations

from collections import Counter
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
    reasons: Counter[str] = field(default_factory=Counter)  # reason -> files failed for it
    offline: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    unmounted: list[str] = field(default_factory=list)  # mount points inside libraries found empty
    duration: float = 0.0
    # ids of the folders whose listing was read (changed) or that vanished: what lies in them may
    # have changed meaning (services/shows regroups them)
    folders_read: set[int] = field(default_factory=set)

    def failure_summary(self) -> str | None:
        """Return one line for every file that failed, by reason, or None when none did.

        A storm of junk files (a broken download manager, a camera's sidecar files) must cost
        one log line per scan, not one per file; the per-file reasons are logged at DEBUG and
        listed on the dashboard and by `flask stats`.
        """
        if not self.failed:
            return None
        files = f"{self.failed:,} file{'s' if self.failed != 1 else ''}"
        reasons = self.reasons.most_common()
        if len(reasons) == 1:
            why = reasons[0][0]
        else:
            why = ", ".join(f"{n:,} {reason}" for reason, n in reasons[:5])
            if len(reasons) > 5:
                why += f", {sum(n for _, n in reasons[5:]):,} for other reasons"
        return f"{files} could not be read: {why} — see the dashboard or `flask stats`"
