"""The study report opened in a real browser (Debian's headless Chromium): every figure loads.

The page itself marks images that fail to load (body attributes data-images-loaded /
data-images-broken, set on the load event); --dump-dom prints the DOM after that event.
"""
import re
import shutil
import subprocess

import pytest

from test_study import run_user_study

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def rendered_body(index, profile) -> dict:
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           f"--user-data-dir={profile}", "--dump-dom", index.as_uri()],
                          capture_output=True, text=True, timeout=120)
    body = re.search(r"<body([^>]*)>", proc.stdout)
    assert proc.returncode == 0 and body, proc.stderr[-2000:]
    return dict(re.findall(r'data-images-(\w+)="(\d+)"', body.group(1)))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_images_load_in_headless_chromium(tmp_path, monkeypatch):
    index, _ = run_user_study(tmp_path, monkeypatch, "report")
    images = len(re.findall(r"<img ", index.read_text()))
    assert images == 5
    assert rendered_body(index, tmp_path / "profile") == {"loaded": str(images), "broken": "0"}

    (index.parent / "model" / "speed.png").unlink()        # the check does catch a missing figure
    assert rendered_body(index, tmp_path / "profile") == {"loaded": str(images - 1), "broken": "1"}
