"""Use case: how fresh each online view's served values are against its freshness_sla (SPEC §9)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Sequence

from featurectl.app.materialize import online_status, request_for
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
    views = _views(defs, names)
    statuses = online_status(online, project, defs, views)
    sources = [offline.newest_event_time(request_for(defs, v, [])) for v in views] if offline else [None] * len(views)
    rows = tuple(assess_freshness(s.view, s.major, int(v.freshness_sla), now, s.newest_event_timestamp,
                                  s.watermark, source, checked_source=offline is not None)
                 for v, s, source in zip(views, statuses, sources))
    return FreshnessResult(now, fail_on, rows, offline is not None)


def _views(defs: Definitions, names: Sequence[str] | None):
    """The online views with a freshness_sla; named ones must be both."""
    if names:
        unknown = [n for n in names if n not in defs.feature_views]
        if unknown:
            raise UsageError(f"unknown or unapplied feature view(s): {', '.join(unknown)}",
                             hint=f"applied views: {', '.join(sorted(defs.feature_views)) or '(none)'}")
        views = [defs.feature_views[n] for n in names]
        unchecked = [v.name for v in views if not v.online or not v.freshness_sla]
        if unchecked:
            raise UsageError(f"feature view(s) {', '.join(unchecked)} declare no freshness_sla or are not online",
                             hint="add freshness_sla: 2h (say) to the view and apply, or leave it out of --views")
        return views
    return [v for v in sorted(defs.feature_views.values(), key=lambda v: v.name) if v.online and v.freshness_sla]
