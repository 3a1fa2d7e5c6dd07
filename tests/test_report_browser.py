"""The study report opened in a real browser (Debian's headless Chromium): every figure loads.

The page itself marks images that fail to load (body attributes data-images-loaded /
data-images-broken, set on the load event); --dump-dom prints the DOM after that event.
"""
import re
import shutil
import subprocess

import pytest

import lowbit as lb
from lowbit.study import StudySettings
from test_study import USER_CODE

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
    (tmp_path / "usercode.py").write_text(USER_CODE)
    monkeypatch.chdir(tmp_path)
    settings = StudySettings.quick(ptq_bits=(8, 3), retrain_bits=(3,), schedules=("direct", "adaptive"),
                                   train_size=600, epochs=1, vbq_bits=(3,), vbq_iterations=2, calib_size=100,
                                   val_size=150, eval_size=250, timing_images=10)
    index = lb.study.run_study(["usercode:model"], data="usercode:data", out=tmp_path / "report",
                               settings=settings, progress=False)
    images = len(re.findall(r"<img ", index.read_text()))
    assert images == 5
    assert rendered_body(index, tmp_path / "profile") == {"loaded": str(images), "broken": "0"}

    (index.parent / "model" / "speed.png").unlink()        # the check does catch a missing figure
    assert rendered_body(index, tmp_path / "profile") == {"loaded": str(images - 1), "broken": "1"}
