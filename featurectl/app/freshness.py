"""Use case: how fresh each online view's served values are against its freshness_sla (SPEC §9).

The one freshness computation: `featurectl freshness`, the SDK's `FeatureStore.freshness` and
the server's `/metrics` (at each scrape) all call `freshness()` and only shape its result."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Sequence

from featurectl.app.materialize import online_status, request_for, select_views
from featurectl.core.definitions import Definitions
from featurectl.core.errors import UsageError
from featurectl.core.monitoring import FRESHNESS_STATUSES, ViewFreshness, assess_freshness, at_or_above

if TYPE_CHECKING:
    from featurectl.offline.base import OfflineStore
    from featurectl.online.base import OnlineStore


@dataclass(frozen=True)
class FreshnessResult:
    now: datetime
    fail_on: str
    views: tuple[ViewFreshness, ...]
    checked_source: bool = False

    @property
    def failing(self) -> list[ViewFreshness]:
        return [v for v in self.views if at_or_above(v.status, self.fail_on, FRESHNESS_STATUSES)]


def freshness(project: str, defs: Definitions, online: "OnlineStore", offline: "OfflineStore | None",
              now: datetime, names: Sequence[str] | None, fail_on: str) -> FreshnessResult:
    if fail_on not in FRESHNESS_STATUSES[1:]:
        raise UsageError(f"--fail-on {fail_on!r} is not a freshness status", hint="use minor, major or critical")
    views = select_views(defs, names, monitored=True)
    statuses = online_status(online, project, defs, views)  # the bookkeeping of every view in two bulk reads
    sources = [offline.newest_event_time(request_for(defs, v, [])) for v in views] if offline else [None] * len(views)
    rows = tuple(assess_freshness(s.view, s.major, int(v.freshness_sla or 0), now, s.newest_event_timestamp,
                                  s.watermark, source, checked_source=offline is not None)
                 for v, s, source in zip(views, statuses, sources))
    return FreshnessResult(now, fail_on, rows, offline is not None)
