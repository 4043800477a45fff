"""Online reads reuse the applied definitions for a few seconds; an apply refreshes them."""
from datetime import datetime, timezone
from pathlib import Path

import pytest

from featurectl import FeatureStore
from featurectl.core.errors import UsageError
from tests.fixtures.repos import edit_view

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)   # the committed sample data ends here
REFS = ["driver_stats:conv_rate"]


def _bump_major(repo: Path) -> None:
    def change(view):
        view["version"] = "2.0.0"
        view["features"] = [f for f in view["features"] if f["name"] != "acc_rate"]
    edit_view(repo, "driver_stats", change)


@pytest.fixture
def served(example_repo: Path):
    store = FeatureStore(example_repo, clock=lambda: NOW)
    store.apply()
    store.materialize("2026-10-31T00:00:00", NOW)
    yield store
    store.close()


def test_an_apply_elsewhere_shows_once_the_cache_expires(example_repo: Path, served: FeatureStore):
    assert served.get_online_features(REFS, [{"driver_id": 1001}])["conv_rate"][0] is not None
    _bump_major(example_repo)
    with FeatureStore(example_repo, clock=lambda: NOW) as other:
        other.apply()
    # Within the cache window this instance still serves major 1 ...
    assert served.get_online_features(REFS, [{"driver_id": 1001}])["conv_rate"][0] is not None
    # ... and once it expires, the new major, empty until materialized.
    served.serving_cache_seconds = 0
    assert served.get_online_features(REFS, [{"driver_id": 1001}])["conv_rate"] == [None]


def test_an_apply_through_the_same_instance_refreshes_at_once(example_repo: Path, served: FeatureStore):
    served.get_online_features(REFS, [{"driver_id": 1001}])
    _bump_major(example_repo)
    served.apply()
    assert served.get_online_features(REFS, [{"driver_id": 1001}])["conv_rate"] == [None]
    with pytest.raises(UsageError, match="acc_rate"):
        served.get_online_features(["driver_stats:acc_rate"], [{"driver_id": 1001}])
