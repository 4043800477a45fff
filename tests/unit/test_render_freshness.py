"""The freshness table's ages read at a glance (the JSON keeps exact seconds)."""
import pytest

from featurectl.render.freshness import _age


@pytest.mark.parametrize("seconds, shown", [
    (0, "0s"), (45, "45s"), (60, "1m"), (61, "1m 1s"), (3_660, "1h 1m"), (7_500, "2h 5m"),
    (30 * 86_400 + 14 * 3_600 + 51 * 60, "30d 14h"), (2 * 86_400, "2d"), (-125, "-2m 5s"), (None, "–"),
])
def test_an_age_shows_its_two_largest_units(seconds, shown):
    assert _age(seconds) == shown
