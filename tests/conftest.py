"""Shared fixtures. Server fixtures live in tests/fixtures/ and are registered here."""
pytest_plugins = [
    "tests.fixtures.repos",
    "tests.fixtures.redis_server",
    "tests.fixtures.redis_cluster",
    "tests.fixtures.postgres",
    "tests.fixtures.catalog_repos",
    "tests.fixtures.offline_stores",
]
