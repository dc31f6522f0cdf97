"""The settings of work on other machines, in one small value."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ComputeSettings:
    redis_url: str
    local_work: bool
    path_map: tuple[tuple[str, str], ...]
    node_secret: str
    worker_scratch: Path | None
    idle: float = 60.0  # seconds a session lease lives without a segment request
    shared: Path | None = None  # LVS_TRANSCODE_SHARED: workers' segments on a shared folder

    @property
    def enabled(self) -> bool:
        """True when workers on other machines are configured (LVS_REDIS_URL set)."""
        return bool(self.redis_url)

    @classmethod
    def of(cls, settings: Any) -> ComputeSettings:
        return cls(
            redis_url=settings.redis_url,
            local_work=settings.local_work,
            path_map=settings.path_map,
            node_secret=settings.node_secret,
            worker_scratch=settings.worker_scratch,
            idle=settings.transcode_idle,
            shared=settings.transcode_shared,
        )


def compute_settings(settings: Any) -> ComputeSettings:
    return ComputeSettings.of(settings)
