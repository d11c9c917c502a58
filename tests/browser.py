"""A headless Chromium for the explorer page: the tests' browser, and the screenshot in docs/explorer.md.

Playwright drives the Chromium already installed (Debian's ``chromium``; ``make test``
installs it with apt-get where it can), never a browser of its own download. A fresh
profile each time, no sync, no background networking.

    python tests/browser.py demo-output/explorer.html docs/images/explorer.png --step 9
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREEN = {"width": 1920, "height": 1080}  # a lecture hall's projector


def chromium_executable() -> str | None:
    """TINYGRAD_SOFTMAX_CHROMIUM if set (a Mac's Chromium.app is not on PATH), else the first on PATH."""
    if os.environ.get("TINYGRAD_SOFTMAX_CHROMIUM"):
        return os.environ["TINYGRAD_SOFTMAX_CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@contextmanager
def chromium(executable: str) -> Iterator[Any]:
    """A Playwright browser context on ``executable``, headless, 1920×1080, with a throw-away profile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=CHROMIUM_ARGS, viewport=SCREEN
        )
        try:
            yield context
        finally:
            context.close()


def screenshot(page_path: Path, png: Path, step: int, keys: str = "") -> Path:
    """Open the explorer page, press → ``step`` times (and each key in ``keys``), save a PNG."""
    executable = chromium_executable()
    if executable is None:
        raise SystemExit("no Chromium on PATH: apt-get install chromium, or set TINYGRAD_SOFTMAX_CHROMIUM")
    with chromium(executable) as context:
        page = context.new_page()
        page.goto(page_path.resolve().as_uri())
        for key in keys:
            page.keyboard.press(key)
        for _ in range(step):
            page.keyboard.press("ArrowRight")
        png.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(png))
    return png


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="an explorer page (tinygrad-softmax explore)")
    parser.add_argument("png", type=Path, help="the screenshot to write")
    parser.add_argument("--step", type=int, default=0, help="how many times to press → first")
    parser.add_argument("--keys", default="", help="single keys to press first, e.g. v for the values")
    args = parser.parse_args()
    print(f"screenshot written to {screenshot(args.page, args.png, args.step, args.keys)}")
