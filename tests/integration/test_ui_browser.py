"""The Dagster UI in a real browser: ``dagster-webserver`` on 127.0.0.1 serves the instance of the
shared main-job run (tests/integration/conftest.py) and headless Chromium (the system's
``chromium``, driven by Playwright) checks that the asset graph shows every group, that a model
asset's page shows its plot, and that its checks are listed. Screenshots are kept under
``tests/artifacts/ui/`` (ignored by git).

Skipped only when no Chromium binary is installed (``.ci/run`` installs the Debian package).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from orchestration.settings import PROJECT_ROOT
from orchestration.ui import process_group

pytestmark = [pytest.mark.s3, pytest.mark.slow]

CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts" / "ui"
LOAD_TIMEOUT_S = 600  # importing the code location on a loaded 2-core machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(base: str, query: str) -> dict:
    req = urllib.request.Request(
        f"{base}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


@pytest.fixture(scope="module")
def webserver(main_run_ctx, tmp_path_factory):
    """The webserver on the run's instance, the code location loaded with the run's settings."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, **main_run_ctx.env, "DAGSTER_HOME": str(main_run_ctx.home)}
    log = tmp_path_factory.mktemp("webserver") / "webserver.log"
    cmd = [str(Path(sys.executable).with_name("dagster-webserver")), "-h", "127.0.0.1", "-p", str(port)]
    cmd += ["-w", str(PROJECT_ROOT / "workspace.yaml")]
    with open(log, "w") as out, process_group(cmd, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out) as proc:
        deadline = time.time() + LOAD_TIMEOUT_S
        groups: set[str] = set()
        while time.time() < deadline and proc.poll() is None:
            try:
                nodes = _graphql(base, "{ assetNodes { groupName } }")["data"]["assetNodes"]
                groups = {n["groupName"] for n in nodes}
                if groups:
                    break
            except (OSError, KeyError, TypeError, ValueError):
                pass
            time.sleep(2)
        if not groups:
            pytest.fail(f"the webserver did not serve the code location: {log.read_text()[-2000:]}")
        yield base


@pytest.fixture(scope="module")
def page(webserver):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )  # Playwright gives every launch a fresh user-data dir
        pg = browser.new_page(viewport={"width": 1600, "height": 1000})
        pg.set_default_timeout(60_000)
        yield pg
        browser.close()


def _shot(page, name: str) -> None:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    print(f"screenshot: {path}")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (Debian package `chromium`) on this machine")
def test_asset_graph_shows_every_group(main_run_ctx, webserver, page):
    groups = {
        main_run_ctx.defs.get_repository_def().asset_graph.get(k).group_name
        for k in main_run_ctx.defs.get_repository_def().asset_graph.get_all_asset_keys()
    }
    assert {"models", "reports", "golden_batch"} <= groups
    page.goto(f"{webserver}/asset-groups", wait_until="networkidle")
    for g in sorted(groups):
        page.get_by_text(g, exact=True).first.wait_for(state="visible")
    # each group is in the sidebar's tree AND a node of the graph
    missing = [g for g in sorted(groups) if page.get_by_text(g, exact=True).count() < 2]
    assert not missing, f"groups not drawn in the graph: {missing}"
    _shot(page, "asset_graph")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (Debian package `chromium`) on this machine")
def test_model_page_shows_its_plot_and_checks(webserver, page):
    page.goto(f"{webserver}/assets/models/titer_softsensor", wait_until="networkidle")
    row = page.locator("tr", has_text="predicted_vs_actual").first
    row.wait_for(state="visible")
    row.get_by_text("Show Markdown").click()
    img = page.locator("[role=dialog] img").first
    img.wait_for(state="visible")
    # the plot is a decoded image, not a broken link
    assert img.evaluate("i => i.complete && i.naturalWidth > 100 && i.naturalHeight > 100")
    _shot(page, "model_plot")
    page.keyboard.press("Escape")
    page.goto(f"{webserver}/assets/models/titer_softsensor?view=checks", wait_until="networkidle")
    page.get_by_text("promotion_gate").first.wait_for(state="visible")
    page.get_by_text("Evaluation result").first.wait_for(state="visible")
    assert "beats baseline" in page.inner_text("body")  # the gate's reason, with its figures
    _shot(page, "model_checks")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary (Debian package `chromium`) on this machine")
def test_batch_reports_asset_links_its_reports(main_run_ctx, webserver, page):
    page.goto(f"{webserver}/assets/reports/batch", wait_until="networkidle")
    page.locator("tr", has_text="n_reports").first.wait_for(state="visible")
    body = page.inner_text("body")
    assert "report_folder" in body and "/reports/batch" in body
    _shot(page, "batch_reports")
