"""The built book in a real browser (headless Chromium driven by Playwright).

Each chapter page must load with no console error, request nothing outside
the book (no CDN: it works offline), and every slider of its explorers must
change the figure shown, with no kernel. Skipped when Chromium or Playwright
is missing, unless SRLIB_REQUIRE_BROWSER=1 (set by .ci/run), where it fails.
"""

import functools
import http.server
import threading

import pytest

from srlib.book import build as book

pytestmark = pytest.mark.slow

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(built_book):
    """The built book served over http://127.0.0.1 (pages with widgets need http, not file://)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=built_book))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class Page:
    """A loaded page and everything it reported: console errors, failed or foreign requests."""

    def __init__(self, browser, url: str, origin: str):
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.problems = []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text} "
                                                                                    f"({m.location.get('url')})"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url}"))
        self.page.on("response", lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"))
        self.page.on("request", lambda r: r.url.startswith(("http:", "https:")) and not r.url.startswith(origin)
                     and self.problems.append(f"outside the book: {r.url}"))
        self.page.goto(url, wait_until="load")
        views = self.page.locator("script[type='application/vnd.jupyter.widget-view+json']").count()
        if views:  # the embedded manager renders every widget view after the page's load event
            self.page.wait_for_function(f"document.querySelectorAll('.jupyter-widgets').length >= {views}",
                                        timeout=20_000)
        self.page.wait_for_timeout(500)  # late console messages (MathJax typesets after load)


def chapter_urls():
    return [f"notebooks/{nb.stem}.html" for nb in book.toc_notebooks()]


def slider_urls():
    """The chapters that show an explorer (srlib.notebook.widgets.explorer): each must have a working slider."""
    return [f"notebooks/{nb.stem}.html" for nb in book.toc_notebooks() if "explorer(" in nb.read_text()]


@pytest.mark.parametrize("path", ["book/intro.html", "book/reproduction.html", "book/bibliography.html", *chapter_urls()])
def test_page_loads_cleanly_from_the_book_alone(browser, site, path):
    loaded = Page(browser, f"{site}/{path}", site)
    assert loaded.problems == []
    assert loaded.page.locator("h1").count() >= 1
    if loaded.page.locator(".math").count():  # MathJax (served by the book) typeset the math
        loaded.page.wait_for_selector("mjx-container", state="attached", timeout=20_000)
    loaded.page.close()


def visible_frames(page) -> list[bytes]:
    """Pixels of the widget images currently shown."""
    images = page.locator(".jupyter-widgets img")
    return [images.nth(i).screenshot() for i in range(images.count()) if images.nth(i).is_visible()]


@pytest.mark.parametrize("path", slider_urls())
def test_every_slider_changes_the_figure_without_a_kernel(browser, site, path):
    loaded = Page(browser, f"{site}/{path}", site)
    page = loaded.page
    handles = page.locator(".widget-slider .noUi-handle")
    assert handles.count() > 0, f"{path} shows an explorer but no slider"
    for i in range(handles.count()):
        handle = handles.nth(i)
        handle.scroll_into_view_if_needed()
        before_src = [page.locator(".jupyter-widgets img").nth(j).get_attribute("src")
                      for j in range(page.locator(".jupyter-widgets img").count())
                      if page.locator(".jupyter-widgets img").nth(j).is_visible()]
        before = visible_frames(page)
        at_end = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
        handle.focus()
        page.keyboard.press("ArrowLeft" if at_end else "ArrowRight")
        page.wait_for_timeout(300)
        after_src = [page.locator(".jupyter-widgets img").nth(j).get_attribute("src")
                     for j in range(page.locator(".jupyter-widgets img").count())
                     if page.locator(".jupyter-widgets img").nth(j).is_visible()]
        assert after_src != before_src, f"slider {i} of {path} did not switch the frame"
        assert visible_frames(page) != before, f"slider {i} of {path} left the same picture"
    assert loaded.problems == []
    page.close()
