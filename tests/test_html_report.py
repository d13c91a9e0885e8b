"""The HTML report: escaping of hostile names, one row per file, thumbnails/heatmaps, and a headless render."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tiny_detector import TinyDetector, make_tiny_weights

import forensics
from forensics.cli import main
from forensics.detectors import register
from forensics.report.html import write_html
from forensics.testing import CHROMIUM, face_photo, headless_chromium, write_image, write_video, write_wav
from forensics.weights import user_weights_dir

INJECTED_TITLE = "<script>document.title='pwned'</script>"


class ExplainingTiny(TinyDetector):
    """The tiny detector plus a face box, evidence with hostile strings, and a heatmap."""

    def units(self, media: Any) -> list:
        units = super().units(media)
        for u in units:
            u.box = (40.0, 30.0, 200.0, 190.0)
        return units

    def evidence(self, media: Any, units: list, logits: np.ndarray) -> dict[str, Any]:
        return {"offset_s": 0.12, "attribution": {"name": INJECTED_TITLE, "similarity": 0.91}}

    def explain(self, media: Any, segment: Any) -> np.ndarray:
        y, x = np.mgrid[0:16, 0:16]
        return np.exp(-((x - 8.0) ** 2 + (y - 6.0) ** 2) / 20.0)


class BrokenExplainer(ExplainingTiny):
    def explain(self, media: Any, segment: Any) -> np.ndarray:
        raise RuntimeError("explanations are broken")


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[Path]]]:
    """A folder of generated media with hostile names, scanned with the explaining tiny detector."""
    d = tmp_path_factory.mktemp("hostile")
    files = [write_video(d / "talk.mp4", seconds=2.0), write_image(d / "face.jpg")]
    # "/" cannot be in a file name: the path itself spells the tag across a folder.
    (d / "<script>alert(1)<").mkdir()
    files.append(write_video(d / "<script>alert(1)<" / "script>.mp4", seconds=1.0, audio=None))
    photo = face_photo()
    hostile = [
        "<img src=x onerror=document.body.setAttribute('data-pwned',1)>.png",
        "line\nbreak.jpg",
        "quo\"te's & <b>.jpg",
        "ünï cødé 名前 ✓.png",
        "with  spaces .jpg",
    ]
    for k, name in enumerate(hostile):
        files.append(write_image(d / name, np.ascontiguousarray(np.roll(photo, 37 * (k + 1), axis=1))))
    files.append(write_wav(d / "tone.wav", seconds=1.0))
    files.append(d / "broken.mp4")
    files[-1].write_text("this is text, not a video\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FORENSICS_HOME", str(d.parent / f"{d.name}-home"))
        register("tiny_test", ExplainingTiny)
        make_tiny_weights(user_weights_dir())
        out = d.parent / f"{d.name}.jsonl"
        list(forensics.scan(d, detectors=["tiny_test"], output=out))
        yield out, files
        register("tiny_test", TinyDetector)


class _Rows(HTMLParser):
    """Collects the file table's rows (their attributes, unescaped) and every <script> element."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str | None]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and (a.get("id") or "").startswith("row"):
            self.rows.append(a)
        self._in_script = tag == "script"
        if tag == "script":
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def _parse(html: str) -> _Rows:
    p = _Rows()
    p.feed(html)
    return p


def test_hostile_names_are_escaped_and_every_file_has_a_row(scanned: tuple[Path, list[Path]], tmp_path: Path) -> None:
    results, files = scanned
    page = write_html(results, tmp_path / "report.html", thumbnails=4).read_text(encoding="utf-8")
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.mp4" in page and "名前 ✓" in page
    parsed = _parse(page)
    assert len(parsed.scripts) == 1  # only the report's own script
    assert sorted(r["data-name"] for r in parsed.rows) == sorted(str(f).lower() for f in files)
    by_name = {Path(str(r["data-name"])).name: r for r in parsed.rows}
    assert by_name["broken.mp4"]["data-status"] == "error" and by_name["broken.mp4"]["data-verdict"] == "unknown"
    assert by_name["tone.wav"]["data-verdict"] == "unknown"
    # Error and skip reasons are on the page; evidence is shown, escaped.
    assert "UnsupportedMediaError" in page and "scores image/video, not audio" in page
    assert "offset_s" in page and "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in page
    # The Content-Security-Policy allows exactly the report's script.
    digest = base64.b64encode(hashlib.sha256(parsed.scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")


def test_thumbnails_boxes_heatmaps_and_timelines(scanned: tuple[Path, list[Path]], tmp_path: Path) -> None:
    results, files = scanned
    page = write_html(results, tmp_path / "r.html", thumbnails=3).read_text(encoding="utf-8")
    assert page.count("<figure>") == 3 and page.count('class="heatmap"') == 3
    gallery = page.split("<h2>Most suspicious frames</h2>")[1]  # the campaign view has thumbnails of its own
    assert gallery.count('stroke="#ff0"') == 3 and gallery.count("data:image/jpeg;base64,") == 3
    n_scored = sum(1 for f in files if f.suffix in (".mp4", ".jpg", ".png") and f.name != "broken.mp4")
    assert page.count('class="timeline"') == n_scored
    # The 2 s video at 2 frames/s: its timeline spans to 2 s with one mark per unit.
    talk = page.split('<h3 class="file">talk.mp4</h3>')[1].split("</section>")[0]
    bars = re.search(r'<path class="series" d="([^"]+)"', talk)
    assert bars and bars.group(1).count("M") == 4 and ">2</text>" in talk and "tiny_test.v1@" in talk
    # A failing explanation, or media that is gone, costs the overlay or the thumbnail, never the report.
    register("tiny_test", BrokenExplainer)
    try:
        page = write_html(results, tmp_path / "b.html", thumbnails=2).read_text(encoding="utf-8")
    finally:
        register("tiny_test", ExplainingTiny)
    assert page.count("<figure>") == 2 and 'class="heatmap"' not in page
    moved = tmp_path / "moved.jsonl"
    moved.write_text(results.read_text(encoding="utf-8").replace(str(results.parent), "/nonexistent"), "utf-8")
    assert "<figure>" not in write_html(moved, tmp_path / "m.html").read_text(encoding="utf-8")
    # ... unless media_root says where the files are now.
    page = write_html(moved, tmp_path / "m.html", thumbnails=1, media_root=files[0].parent).read_text("utf-8")
    assert page.count("<figure>") == 1


def test_heatmaps_come_only_from_the_weights_that_scored(scanned: tuple[Path, list[Path]], tmp_path: Path) -> None:
    results, _ = scanned
    make_tiny_weights(user_weights_dir(), threshold=0.3)  # other bytes under the same name tiny_test.v1
    try:
        page = write_html(results, tmp_path / "w.html", thumbnails=2).read_text(encoding="utf-8")
    finally:
        make_tiny_weights(user_weights_dir())
    assert page.count("<figure>") == 2 and 'class="heatmap"' not in page
    assert page.count("no heatmap: tiny_test.v1 is now tiny_test.v1@") == 2 and "not the tiny_test.v1@" in page
    page = write_html(results, tmp_path / "v.html", thumbnails=2).read_text(encoding="utf-8")
    assert page.count('class="heatmap"') == 2  # the recorded weights are back


def test_rescan_keeps_one_row_per_file_and_empty_results(scanned: tuple[Path, list[Path]], tmp_path: Path) -> None:
    results, files = scanned
    twice = tmp_path / "twice.jsonl"
    twice.write_text(results.read_text(encoding="utf-8") * 2, encoding="utf-8")
    assert len(_parse(write_html(twice, tmp_path / "t.html", thumbnails=0).read_text("utf-8")).rows) == len(files)
    # A malformed record (a segment without a score, a path that is not a string) is counted, not fatal.
    bad = tmp_path / "bad.jsonl"
    rec = json.loads(results.read_text(encoding="utf-8").splitlines()[0])
    rec["results"][0]["segments"] = [{"start": 0.0}]
    bad.write_text(results.read_text(encoding="utf-8") + json.dumps(rec) + '\n{"path": 3, "verdict": {}}\n', "utf-8")
    page = write_html(bad, tmp_path / "bad.html", thumbnails=0).read_text("utf-8")
    assert "2 malformed record(s) left out" in page and len(_parse(page).rows) == len(files)
    empty = write_html(tmp_path / "missing.jsonl", tmp_path / "e.html").read_text("utf-8")
    assert "0 files" in empty and not _parse(empty).rows


def test_cli_report(scanned: tuple[Path, list[Path]], tmp_path: Path) -> None:
    results, files = scanned
    out = tmp_path / "cli.html"
    assert main(["report", str(results), "-o", str(out), "--thumbnails", "0"]) == 0
    assert len(_parse(out.read_text("utf-8")).rows) == len(files)
    # `scan --html` writes the report of the scan it just made (exit code 4: the broken file).
    args = ["scan", str(files[0].parent), "-o", str(tmp_path / "r.jsonl"), "--detectors", "tiny_test", "-q"]
    assert main([*args, "--workers", "0", "--html", str(tmp_path / "scan.html")]) == 4
    assert len(_parse((tmp_path / "scan.html").read_text("utf-8")).rows) == len(files)


def _chromium(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return headless_chromium(url, tmp_path / "chromium-profile", *extra)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_renders_in_headless_chromium(scanned: tuple[Path, list[Path]], tmp_path: Path) -> None:
    from PIL import Image

    results, files = scanned
    report = write_html(results, tmp_path / "report.html", thumbnails=3)
    n_errors = sum(1 for f in files if f.name == "broken.mp4")
    # The script ran: it marks the body, applies the linked filter and sorts by score, highest first.
    dom = _chromium(f"{report.as_uri()}#status=error", tmp_path, "--dump-dom").stdout
    assert f'data-ready="{len(files)}"' in dom and f'data-shown="{n_errors}"' in dom
    file_rows = dom.split('id="files"')[1].split("</table>")[0]
    assert file_rows.count(' hidden=""') == len(files) - n_errors and 'id="f-verdict"' in dom
    dom = _chromium(f"{report.as_uri()}#sort=-2", tmp_path, "--dump-dom").stdout
    assert f'data-shown="{len(files)}"' in dom and 'aria-sort="descending"' in dom
    rows = re.findall(r'<tr id="row\d+".*?</tr>', dom, flags=re.S)
    keys = [re.findall(r'<td[^>]*data-sort="([^"]*)"', row)[2] for row in rows]  # column 2: verdict score
    scores = [float(k) for k in keys if k]
    assert len(rows) == len(files) and keys == [*map(str, scores), *[""] * (len(keys) - len(scores))]
    assert len(scores) >= 5 and scores == sorted(scores, reverse=True)
    # No injected markup executed.
    assert "<title>forensics report</title>" in dom and 'data-pwned="1"' not in dom
    shot = tmp_path / "shot.png"
    _chromium(report.as_uri(), tmp_path, f"--screenshot={shot}", "--window-size=1280,2000")
    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert img.shape == (2000, 1280) and img.std() > 10
