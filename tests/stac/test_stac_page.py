"""The browsable page, opened in a real headless Chromium (Debian's ``chromium`` package)."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.stac.conftest import ERSST_ID

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TITLE = "NOAA Extended Reconstructed Sea Surface Temperature (ERSST) v5, monthly"


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run does it)")
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", *args, page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_the_page_needs_no_network(ersst_target):
    page = (ersst_target / "index.html").read_text()
    # Resources that a browser would load: only relative paths, never a host.
    loaded = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page)
    links = re.findall(r"<a [^>]*href=['\"]([^'\"]+)", page)
    assert [u for u in loaded if "://" in u and u not in links] == []
    assert "<link" not in page and "@import" not in page and "<script src" not in page


def test_the_page_in_headless_chromium(ersst_target, tmp_path):
    page = ersst_target / "index.html"
    dom = chromium(page, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert TITLE in dom.stdout
    assert 'recipes_core.open_dataset("catalog.json", "ersst-v5-monthly")' in dom.stdout
    assert "CC0-1.0" in dom.stdout and "degC" in dom.stdout
    # The inline onload handler writes the thumbnail's naturalWidth once the PNG has loaded.
    image = re.search(r'<img[^>]*src="ersst-v5-monthly/thumbnail.png"[^>]*>', dom.stdout)
    assert image is not None, dom.stdout[:2000]
    loaded = re.search(r'data-loaded="(\d+)"', image.group(0))
    assert loaded is not None and int(loaded.group(1)) > 100, image.group(0)

    shot = tmp_path / "page.png"
    done = chromium(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,900")
    assert done.returncode == 0, done.stderr[-2000:]
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1200, 900)
    assert shot.stat().st_size > 50_000  # text, a table and a map: not a blank page
    # The thumbnail was painted: the text is grey, links blue and the header navy, so only the
    # map and its colour bar give tens of thousands of strongly coloured pixels in many hues.
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    saturated = pixels[pixels.max(axis=-1) - pixels.min(axis=-1) > 0.3]
    assert len(saturated) > 20_000, len(saturated)
    assert len({tuple(p) for p in np.round(saturated, 2)}) > 200


def test_the_thumbnail_is_a_real_picture(ersst_target):
    png = (ersst_target / ERSST_ID / "thumbnail.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (640, 360)
