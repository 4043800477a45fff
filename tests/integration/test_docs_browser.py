"""The catalog in a real headless browser (Debian's chromium driven by Playwright): the index
renders, typing in the filter narrows the list, a click reaches a view page, and nothing is
requested from the network. A screenshot is kept in tests/artifacts/ (gitignored)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fixtures.servers import server_missing
from tests.integration.test_cli_workflow import ok

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
# The flags of a quiet, throwaway browser: no background traffic, no first-run work.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


@pytest.fixture
def browser_page(tmp_path):
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        server_missing("chromium (apt-get install chromium; `make servers` does it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        server_missing("playwright (pip install -e '.[dev]')")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 900})
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(15_000)
            yield page
        finally:
            context.close()


def test_index_filter_and_navigation_in_chromium(run_cli, example_repo, browser_page):
    ok(run_cli("apply"))
    ok(run_cli("docs"))
    index = example_repo / ".featurectl" / "docs" / "index.html"
    page = browser_page
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(index.as_uri())
    rows = page.locator("#objects tbody tr")
    total = rows.count()
    assert total == 9
    assert page.locator("#objects tbody tr:visible").count() == total
    assert page.locator("svg .node").count() == 9  # the whole lineage graph is drawn

    page.locator("#filter").fill("driver_st")
    visible = page.locator("#objects tbody tr:visible")
    assert visible.count() == 1
    assert "driver_stats" in visible.inner_text()
    assert page.locator("#count").inner_text() == f"1 of {total} objects"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "catalog-index-filtered.png"), full_page=True)

    page.locator("#filter").fill("rides-ml")  # owners are searchable too
    assert page.locator("#objects tbody tr:visible").count() == 3

    page.locator("#filter").fill("driver_stats")
    page.locator("#objects tbody tr:visible a", has_text="driver_stats").click()
    page.wait_for_load_state()
    assert page.url.endswith("/feature_view/driver_stats.html")
    assert page.locator("h1").inner_text().startswith("feature_view")
    assert page.locator("table.features tbody tr").count() == 4
    assert page.locator(".graph svg .node").count() == 4  # driver, driver_hourly, the view, the service
    page.screenshot(path=str(ARTIFACTS / "catalog-view-page.png"), full_page=True)

    page.locator(".graph svg a", has_text="driver_ranking").click()  # graph nodes are links too
    page.wait_for_load_state()
    assert page.url.endswith("/feature_service/driver_ranking.html")

    assert requested and all(url.startswith("file://") for url in requested), requested
