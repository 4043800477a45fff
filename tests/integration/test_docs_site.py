"""`featurectl docs`: the static site for example_repo and for a repository with history.
Every page exists, every relative link resolves, nothing is loaded from the network, and the
pages show what SPEC §10 promises."""
from __future__ import annotations

import json
import re
import socket
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag


from tests.integration.test_cli_workflow import ok

# Attributes through which a browser loads or navigates to something.
LINK_ATTRS = {"href", "src", "xlink:href", "action", "poster", "data"}
# Namespace declarations name a vocabulary; nothing is fetched from them.
NAMESPACES = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in LINK_ATTRS and value is not None:
                self.links.append(value)
            if name == "id" and value:
                self.ids.add(value)


def parse(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text())
    return parser


def check_site(site: Path) -> dict:
    """The checks every built site must pass; returns catalog.json."""
    catalog = json.loads((site / "catalog.json").read_text())
    assert catalog["format_version"] == 1
    expected = {"index.html", "rules.html"} | {f"{o['kind']}/{o['name']}.html" for o in catalog["objects"]}
    pages = {str(p.relative_to(site)) for p in site.rglob("*.html")}
    assert pages == expected
    for relative in sorted(pages):
        page = site / relative
        text = page.read_text()
        assert not re.search(r"@import|url\(\s*['\"]?https?:", text), f"{relative} loads CSS from the network"
        parsed = parse(page)
        for link in parsed.links:
            assert not re.match(r"^(https?:)?//", link), f"{relative} links to the network: {link}"
            target, fragment = urldefrag(link)
            resolved = (page.parent / target).resolve() if target else page
            assert resolved.is_file(), f"{relative}: broken link {link}"
            if fragment and resolved.suffix == ".html":
                assert fragment in parse(resolved).ids, f"{relative}: no anchor #{fragment} in {target}"
        leftover = re.findall(r"https?://[^\s\"'<>]+", text)
        assert set(leftover) <= NAMESPACES, f"{relative} names network addresses: {set(leftover) - NAMESPACES}"
    return catalog


def build(run_cli, repo: Path, *args: str) -> Path:
    result = ok(run_cli("docs", *args, cwd=repo))
    assert "Open file://" in result.stdout
    return repo / ".featurectl" / "docs" if not args else Path(args[-1])


def test_example_repo_site(run_cli, example_repo):
    ok(run_cli("apply"))
    ok(run_cli("materialize", "2000-01-01", "2100-01-01", "--views", "driver_stats"))
    site = build(run_cli, example_repo)
    catalog = check_site(site)
    assert {(o["kind"], o["name"]) for o in catalog["objects"]} >= {
        ("entity", "driver"), ("source", "driver_hourly"), ("feature_view", "driver_stats"),
        ("feature_service", "driver_ranking")}
    index = (site / "index.html").read_text()
    assert index.count("<svg") == 1 and 'id="filter"' in index
    assert index.count('href="feature_view/') >= 3  # the table and the graph's nodes link to pages
    raw_view = (site / "feature_view" / "driver_stats.html").read_text()
    view = _text(raw_view)
    for text in ("conv_rate", "float32", "avg_daily_trips", "rides-ml@example.com", "team: rides", "2h", "1d",
                 'allowed ["sedan", "suv", "van"]', "newest event 20", "SLA 2h", "watermark 2100-01-01"):
        assert text in view, text
    assert "<svg" in raw_view
    assert 'href="../source/driver_hourly.html"' in raw_view
    assert 'href="../feature_service/driver_ranking.html"' in raw_view
    freshness = {o["name"]: o["freshness"] for o in catalog["objects"] if o["kind"] == "feature_view"}
    assert freshness["driver_stats"]["newest_event_timestamp"] and freshness["driver_stats"]["major"] == 1
    assert freshness["customer_profile"]["newest_event_timestamp"] is None
    assert "nothing materialized" in _text((site / "feature_view" / "customer_profile.html").read_text())
    service = (site / "feature_service" / "driver_ranking.html").read_text()
    assert 'href="../feature_view/customer_profile.html"' in service
    rules = (site / "rules.html").read_text()
    rows = json.loads(ok(run_cli("rules", "--format", "json")).stdout)
    assert all(f'id="{r["id"]}"' in rules for r in rows)
    assert catalog["rules"] == rows
    assert catalog["lineage"] == json.loads(ok(run_cli("lineage", "--format", "json")).stdout)


def _text(html: str) -> str:
    """What a reader sees: tags stripped, entities decoded, whitespace collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_site_of_a_repository_with_history(run_cli, history_repo, tmp_path):
    out = tmp_path / "site"
    site = build(run_cli, history_repo, "--out", str(out))
    catalog = check_site(site)
    by_name = {o["name"]: o for o in catalog["objects"]}
    trips = by_name["trips"]
    assert trips["version"] == "2.0.0"
    assert [h["revision"] for h in trips["history"]] == [1, 2, 3]
    assert [h["actor"] for h in trips["history"]] == ["alice", "bob", "carol"]
    assert [[i["rule"] for i in h["items"]] for h in trips["history"][1:]] == [["FEATURE_ADDED"], ["FEATURE_REMOVED"]]
    assert trips["history"][2]["required_bump"] == "major"
    assert trips["upstream"] == ["entity:driver", "source:trips_source"]
    assert trips["downstream"] == ["feature_service:ranking"]

    page = _text((site / "feature_view" / "trips.html").read_text())
    for text in ("2.0.0", "1.1.0 → 2.0.0", "1.0.0 → 1.1.0", "FEATURE_ADDED", "FEATURE_REMOVED", "by carol",
                 "by bob", "surge", "Surge multiplier", "trips_today", "min 0"):
        assert text in page, text
    raw = (site / "feature_view" / "trips.html").read_text()
    assert 'href="../rules.html#FEATURE_REMOVED"' in raw and "<svg" in raw

    legacy = by_name["legacy"]
    assert legacy["removed"] is True and legacy["removed_at"] == 4 and legacy["deprecated"] is True
    assert [h["action"] for h in legacy["history"]] == ["add", "update", "remove"]
    assert legacy["history"][1]["items"][0]["rule"] == "METADATA_CHANGED"
    legacy_page = _text((site / "feature_view" / "legacy.html").read_text())
    assert "removed at revision 4" in legacy_page and "old_score" in legacy_page
    index = _text((site / "index.html").read_text())
    assert "1 removed" in index


def test_docs_on_an_empty_registry_and_an_unwritable_out(run_cli, example_repo, tmp_path):
    site = build(run_cli, example_repo)
    assert check_site(site)["objects"] == []
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = ok(run_cli("docs", "--out", str(blocker / "site")), 2)
    assert "--out" in result.stderr


def test_an_unreachable_online_store_is_a_note_not_a_failure(run_cli, example_repo):
    ok(run_cli("apply"))
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = example_repo / "featurectl.yaml"
    config.write_text(config.read_text().replace(
        "online_store: {type: sqlite, path: .featurectl/online.db}",
        f"online_store: {{type: redis, url: 'redis://127.0.0.1:{port}/0'}}"))
    site = build(run_cli, example_repo)
    page = _text((site / "feature_view" / "driver_stats.html").read_text())
    assert "freshness unavailable: the online store could not be read" in page
    assert json.loads((site / "catalog.json").read_text())["freshness_note"].startswith("freshness unavailable")
