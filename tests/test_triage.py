"""Campaign triage: fingerprints in the scan's one decode, near-duplicate clusters (precision and recall on
generated re-uploads), provenance read from files that carry it, and the cluster and provenance columns."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tiny_detector import TinyDetector, make_tiny_weights

import forensics
from forensics.cli import main
from forensics.detectors import register
from forensics.media import open_media
from forensics.media.core import Media
from forensics.report import load_results
from forensics.results import MediaReport
from forensics.testing import (
    CHROMIUM,
    campaign,
    headless_chromium,
    make_copy,
    pair_scores,
    panning_video,
    photo,
    speechlike,
    write_image,
)
from forensics.triage.cluster import (
    Fingerprint,
    audio_match,
    cluster,
    cluster_fingerprints,
    sidecar,
    video_match,
)
from forensics.triage.fingerprint import decode, fingerprint, mirror, trim_borders
from forensics.triage.provenance import read_provenance
from forensics.weights import user_weights_dir


@pytest.fixture(scope="module")
def tiny_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The tiny detector (2 fps frames, like the face detectors) with weights in a private home."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FORENSICS_HOME", str(home))
        register("tiny_test", TinyDetector)
        make_tiny_weights(user_weights_dir())
        yield


def _scan(folder: Path, out: Path) -> list[MediaReport]:
    return list(forensics.scan(folder, detectors=["tiny_test"], output=out))


def _assert_clusters(results: Path, truth: dict[Path, int], distractors: list[Path]) -> tuple[float, float]:
    rows = cluster(results)
    by_path = {Path(r["path"]): r for r in rows}
    precision, recall = pair_scores(truth, {p: r["cluster"] for p, r in by_path.items()})
    assert precision >= 0.98 and recall >= 0.95, (precision, recall)
    for d in distractors:  # unrelated files are never merged
        assert by_path[d]["cluster_size"] == 1, (d, by_path[d])
    return precision, recall


@pytest.fixture(scope="module")
def generated(tiny_home: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[Path, int], list[Path]]:
    """Three panning videos with their own speech and a photo, every kind of re-upload of each, and unrelated
    videos and photos; scanned with the tiny detector."""
    d = tmp_path_factory.mktemp("campaign")
    src = d / "originals"
    src.mkdir()
    originals = [
        panning_video(src / f"{n}.mp4", n, seed=k + 1) for k, n in enumerate(["astronaut", "coffee", "rocket"])
    ]
    originals.append(write_image(src / "chelsea.png", photo("chelsea")))
    truth = campaign(d / "copies", originals)
    distractors = [
        panning_video(src / "hubble.mp4", "hubble_deep_field", seed=7),
        panning_video(src / "cells.mp4", "immunohistochemistry", seed=8),
        write_image(src / "wheel.jpg", photo("colorwheel")),
        write_image(src / "camera.jpg", photo("camera")),
    ]
    out = d / "results.jsonl"
    _scan(d, out)
    return out, truth, distractors


@pytest.mark.slow
@pytest.mark.data
def test_shared_campaign_clusters(tiny_home: None, shared_data: Path, tmp_path: Path) -> None:
    """Real talking heads with sound (one 34 s, cut to a 10 s excerpt) and a real photo, every re-upload of
    each, among unrelated real videos and photos."""
    video, image = shared_data / "real_video", shared_data / "real_image"
    originals = [
        video / "KwaiVGI__LivePortrait__assets__examples__driving__d6.mp4",
        video / "smeetrs__deep_avsr__audio__demo__00016.mp4",
        image / "EliSchwartz__imagenet-sample-images__n01820546_lorikeet.jpeg",
    ]
    distractors = [
        video / "KwaiVGI__LivePortrait__assets__examples__driving__d3.mp4",
        video / "smeetrs__deep_avsr__audio__demo__00019.mp4",
        video / "rizkiarm__LipNet__evaluation__samples__GRID__bbaf2n.mpg",
        image / "EliSchwartz__imagenet-sample-images__n02007558_flamingo.jpeg",
        image / "EliSchwartz__imagenet-sample-images__n02128925_jaguar.jpeg",
    ]
    folder = tmp_path / "set"
    folder.mkdir()
    for p in [*originals, *distractors]:
        (folder / p.name).symlink_to(p)
    truth = campaign(folder / "copies", [folder / p.name for p in originals], excerpt_s=10.0)
    _scan(folder, tmp_path / "r.jsonl")
    _assert_clusters(tmp_path / "r.jsonl", truth, [folder / p.name for p in distractors])


def test_generated_campaign_clusters(generated: tuple[Path, dict[Path, int], list[Path]]) -> None:
    results, truth, distractors = generated
    _assert_clusters(results, truth, distractors)
    rows = {Path(r["path"]).name: r for r in cluster(results)}
    # The excerpt (its middle 4 s) and the mirrored copy are matched; each cluster names one earliest file.
    assert rows["astronaut.excerpt.mp4"]["cluster"] == rows["astronaut.mp4"]["cluster"]
    assert rows["coffee.mirror.mp4"]["cluster"] == rows["coffee.mp4"]["cluster"]
    earliest = {r["cluster"]: r["earliest"] for r in rows.values()}
    assert sum(r["is_earliest"] for r in rows.values()) == len(earliest)
    assert all(r["date_source"] in ("creation_time", "name_date", "file_mtime", "exif_datetime") for r in rows.values())


def test_cluster_command_and_table_columns(generated: tuple[Path, dict[Path, int], list[Path]], tmp_path: Path) -> None:
    results, _, _ = generated
    copy = tmp_path / "results.jsonl"
    shutil.copy(results, copy)
    before = load_results(copy)
    assert before["cluster"].isna().all() and "prov_software" in before.columns  # no sidecar yet
    assert main(["cluster", str(copy), "-o", str(tmp_path / "clusters.csv")]) == 0
    assert sidecar(copy).exists() and (tmp_path / "clusters.csv").read_text().startswith("path,")
    df = load_results(copy).drop_duplicates("path")
    assert df["cluster"].notna().all() and df["cluster"].nunique() < len(df)
    astronaut = df[df["path"].str.contains("/astronaut")]
    assert astronaut["cluster"].nunique() == 1 and len(astronaut) == 11
    assert set(astronaut["cluster_earliest"]) <= set(astronaut["path"])


def test_fingerprints_reuse_the_detectors_frames(
    tiny_home: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = panning_video(tmp_path / "v.mp4", "astronaut", seconds=3.0)
    calls = []
    decode_video = Media._decode_video

    def counted(self: Media, *args: object, **kwargs: object) -> Iterator:
        calls.append(self.path)
        return decode_video(self, *args, **kwargs)

    monkeypatch.setattr(Media, "_decode_video", counted)
    (report,) = _scan(video, tmp_path / "r.jsonl")
    assert len(calls) == 1  # the tiny detector's 2 fps decode, shared with the fingerprint
    assert report.fingerprint and "video" in report.fingerprint and "audio" in report.fingerprint
    assert report.provenance and report.provenance["dates"]["file_mtime"]
    rec = json.loads((tmp_path / "r.jsonl").read_text().splitlines()[0])
    assert MediaReport.from_dict(rec).to_dict() == {k: v for k, v in rec.items() if k not in ("signature", "elapsed_s")}
    # Records from before fingerprints still load everywhere.
    old = {k: v for k, v in rec.items() if k not in ("fingerprint", "provenance")}
    assert "fingerprint" not in MediaReport.from_dict(old).to_dict()
    (tmp_path / "old.jsonl").write_text(json.dumps(old) + "\n")
    assert load_results(tmp_path / "old.jsonl")["prov_software"].isna().all()
    assert cluster(tmp_path / "old.jsonl")[0]["fingerprinted"] is False


def test_hashes_survive_edits_and_mirror_exactly() -> None:
    img = photo("coffee")
    a = decode(fingerprint(_image_media(img)))
    assert a.frames is not None
    flipped = decode(fingerprint(_image_media(np.ascontiguousarray(img[:, ::-1]))))
    assert flipped.frames is not None and bin(int(mirror(a.frames[0, 0]) ^ flipped.frames[0, 0])).count("1") <= 2
    boxed = np.pad(img, ((30, 30), (50, 50), (0, 0)))
    assert trim_borders(boxed[..., 0].astype(np.float32)).shape == img.shape[:2]
    other = decode(fingerprint(_image_media(photo("rocket"))))
    assert video_match(a, flipped) == 1.0 and video_match(a, other) == 0.0


def _image_media(img: np.ndarray) -> Media:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "i.png"
    write_image(path, img)
    return open_media(path)


def test_audio_excerpt_matches_at_its_offset(tmp_path: Path) -> None:
    from forensics.testing import write_video

    long = write_video(tmp_path / "long.mp4", seconds=12.0, audio="speech", seed=3)
    part = make_copy(long, tmp_path / "part.mkv", start=5.0, duration=5.0, acodec="libopus", mirror=True, scale=0.5)
    a, b = decode(fingerprint(open_media(long))), decode(fingerprint(open_media(part)))
    share, offset = audio_match(a, b)
    assert share > 0.2 and offset == pytest.approx(5.0, abs=0.1)
    c = decode(fingerprint(open_media(write_video(tmp_path / "c.mp4", seconds=6.0, audio="speech", seed=4))))
    assert audio_match(a, c)[0] == 0.0
    assert speechlike(1.0, seed=3).shape == (16000,)


def test_index_finds_noisy_copies_among_many() -> None:
    rng = np.random.default_rng(0)
    fps: list[Fingerprint] = []
    truth = []
    for k in range(300):
        base = rng.integers(0, 2**63, (20, 11), dtype=np.uint64) & ~np.uint64(1)
        copies = 3 if k < 50 else 1
        for _ in range(copies):
            noise = np.zeros_like(base)
            for bit in rng.integers(1, 64, (20, 11, 3)).transpose(2, 0, 1):
                noise ^= np.uint64(1) << bit.astype(np.uint64)
            fps.append(Fingerprint(t=np.arange(20) * 0.5, frames=base ^ noise))
            truth.append(k)
    roots, _ = cluster_fingerprints(fps)
    assert len(set(roots)) == 300
    assert all((roots[i] == roots[j]) == (truth[i] == truth[j]) for i in range(0, 400, 7) for j in range(0, 400, 5))


def test_provenance_png_parameters_exif_xmp_and_container(tmp_path: Path) -> None:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a politician at a rally\nSteps: 30, Sampler: Euler a, Model: sd_xl_base_1.0")
    info.add_text("Software", "ComfyUI")
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
        'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia" '
        'xmp:CreatorTool="Adobe Firefly"/></rdf:RDF></x:xmpmeta>'
    )
    info.add_itxt("XML:com.adobe.xmp", xmp)
    png = tmp_path / "gen.png"
    Image.fromarray(photo("coffee")).save(png, pnginfo=info)
    prov = read_provenance(png)
    assert prov["generation_parameters"]["parameters"].startswith("a politician")
    assert prov["digital_source_type"].endswith("trainedAlgorithmicMedia")
    names = {s["name"]: s for s in prov["software"]}
    assert {"ComfyUI", "Adobe Firefly", "SDXL"} <= set(names) or {"ComfyUI", "Adobe Firefly"} <= set(names)
    assert names["Adobe Firefly"]["field"] == "xmp:CreatorTool" and names["ComfyUI"]["source"] == "png"

    jpg = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x0131], exif[0x010F], exif[0x0132] = "Adobe Photoshop 25.0", "Apple", "2024:03:05 10:11:12"
    Image.fromarray(photo("rocket")).save(jpg, exif=exif)
    prov = read_provenance(jpg)
    assert prov["dates"]["exif_datetime"] == "2024-03-05T10:11:12+00:00"
    assert any(e["field"] == "Software" and e["source"] == "exif" for e in prov["evidence"])
    assert any(s["name"] == "Adobe Photoshop" and s["kind"] == "editor" for s in prov["software"])

    mp4 = _tagged_mp4(tmp_path / "tagged.mp4")
    prov = read_provenance(mp4)
    fields = {e["field"]: e["value"] for e in prov["evidence"]}
    assert prov["dates"]["creation_time"] == "2023-11-02T08:30:00+00:00"
    assert fields["com.apple.quicktime.software"] == "CapCut 9.1" and fields["handler_name"] == "Core Media Video"
    assert fields["com.android.version"] == "14"
    assert any(s["name"] == "CapCut" and s["field"] == "com.apple.quicktime.software" for s in prov["software"])


def _tagged_mp4(path: Path) -> Path:
    """An MP4 whose container says when and on what it was made (QuickTime and Android keys, handler name)."""
    import av

    from forensics.testing import write_video

    plain = write_video(path.with_name("plain.mp4"), seconds=1.0, audio=None)
    with (
        av.open(str(plain)) as inp,
        av.open(str(path), "w", format="mp4", options={"movflags": "use_metadata_tags"}) as out,
    ):
        out.metadata.update(
            {
                "creation_time": "2023-11-02T08:30:00.000000Z",
                "com.apple.quicktime.software": "CapCut 9.1",
                "com.android.version": "14",
            }
        )
        vin = inp.streams.video[0]
        vs = out.add_stream_from_template(vin)
        vs.metadata["handler_name"] = "Core Media Video"
        for pkt in inp.demux(vin):
            if pkt.dts is None:
                continue
            pkt.stream = vs
            out.mux(pkt)
    return path


def test_provenance_c2pa_signed_with_a_throwaway_certificate(tmp_path: Path) -> None:
    pytest.importorskip("c2pa")
    pytest.importorskip("cryptography")
    from forensics.testing import c2pa_sign

    src = write_image(tmp_path / "in.jpg", photo("chelsea"))
    signed = c2pa_sign(src, tmp_path / "signed.jpg", generator="campaign-gen 2.1", software_agent="FaceFusion 3")
    prov = read_provenance(signed)
    c2 = prov["c2pa"]
    assert c2["claim_generator"].startswith("campaign-gen 2.1")
    assert c2["actions"][0]["action"] == "c2pa.created" and c2["actions"][0]["software_agent"] == "FaceFusion 3"
    assert (
        c2["signature"]["state"] in ("Valid", "Trusted") and "signingCredential.untrusted" in c2["signature"]["status"]
    )
    assert prov["digital_source_type"].endswith("trainedAlgorithmicMedia")
    assert any(s["name"] == "FaceFusion" and s["source"] == "c2pa" for s in prov["software"])
    tampered = tmp_path / "tampered.jpg"
    data = bytearray(signed.read_bytes())
    data[-200] ^= 0xFF  # a pixel byte of the JPEG's scan data
    tampered.write_bytes(bytes(data))
    state = read_provenance(tampered)["c2pa"]["signature"]
    assert state["state"] == "Invalid" and any("mismatch" in s for s in state["status"])
    assert "c2pa" not in read_provenance(src)


def test_provenance_reads_stable_diffusion_watermarks(tmp_path: Path) -> None:
    from forensics.testing import embed_dwt_dct
    from forensics.triage.provenance import WATERMARKS, dwt_dct_bits

    img = photo("astronaut")
    for name, (kind, length, mark) in WATERMARKS.items():
        bits = [int(b) for b in (np.unpackbits(np.frombuffer(mark, np.uint8)) if kind == "bytes" else str(mark))]
        path = write_image(tmp_path / f"{name}.png", embed_dwt_dct(img, bits))
        prov = read_provenance(path, kind="image", image=open_media(path).frames()[0].image)
        assert prov["watermark"]["mark"] == name, prov.get("watermark")
        assert any(e["source"] == "watermark" and e["field"] == f"dwtDct:{name}" for e in prov["evidence"])
        assert len(dwt_dct_bits(img, length)) == length
    plain = write_image(tmp_path / "plain.png", img)
    assert "watermark" not in read_provenance(plain, kind="image", image=img)


def test_watermark_reader_agrees_with_invisible_watermark() -> None:
    imwatermark = pytest.importorskip("imwatermark")
    from forensics.triage.provenance import dwt_dct_bits

    for name in ("astronaut", "rocket"):
        bgr = np.ascontiguousarray(photo(name)[..., ::-1])
        enc = imwatermark.WatermarkEncoder()
        enc.set_watermark("bytes", b"SDV2")
        marked = enc.encode(bgr, "dwtDct")
        assert imwatermark.WatermarkDecoder("bytes", 32).decode(marked, "dwtDct") == b"SDV2"
        assert np.packbits(dwt_dct_bits(np.ascontiguousarray(marked[..., ::-1]), 32)).tobytes() == b"SDV2"


def test_html_campaign_view_and_blur(generated: tuple[Path, dict[Path, int], list[Path]], tmp_path: Path) -> None:
    from forensics.report.html import write_html

    results, truth, _ = generated
    page = write_html(results, tmp_path / "r.html", thumbnails=2).read_text("utf-8")
    assert '<table id="clusters">' in page and 'id="campaign-timeline"' in page
    n_multi = len({k for k in truth.values()})
    assert page.count('<tr class="cluster"') == n_multi and page.count('class="members"') == n_multi
    assert page.count('<img class="thumb"') >= 2 * n_multi and '<svg class="thumb"' in page
    assert '<body data-blur="on">' in page and 'id="blur" type="checkbox" checked' in page
    assert page.count('<circle class="dot"') == len(truth) + 4  # every file has a date (at least its file time)
    unblurred = write_html(results, tmp_path / "u.html", thumbnails=0, blur=False).read_text("utf-8")
    assert '<body data-blur="off">' in unblurred and "checked>" not in unblurred.split('id="blur"')[1][:30]
    assert "<img" not in unblurred  # no thumbnails asked: the strips stay empty


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_campaign_view_in_headless_chromium(
    generated: tuple[Path, dict[Path, int], list[Path]], tmp_path: Path
) -> None:
    import re

    from forensics.report.html import write_html

    results, truth, _ = generated
    report = write_html(results, tmp_path / "r.html", thumbnails=1)

    def dom(fragment: str) -> str:
        return headless_chromium(f"{report.as_uri()}#{fragment}", tmp_path / "profile", "--dump-dom").stdout

    n_multi = len(set(truth.values()))
    # Sorting by size, largest first; every cluster shown.
    page = dom("csort=-1")
    sizes = [
        int(x)
        for x in re.findall(
            r'<tr class="cluster[^"]*"[^>]*>(?:<td[^>]*>[^<]*</td>)<td class="num" data-sort="(\d+)"', page
        )
    ]
    assert len(sizes) == n_multi and sizes == sorted(sizes, reverse=True) and f'data-shown="{n_multi}"' in page
    # Filtering clusters by a member's name.
    page = dom("cq=coffee.mirror")
    assert 'id="clusters"' in page and 'data-shown="1"' in page.split('id="clusters"')[1][:200]
    # A cluster opens its files and filters the file table to them.
    astronaut = next(r for r in cluster(results) if Path(r["path"]).name == "astronaut.mp4")
    page = dom(f"cluster={astronaut['cluster']}")
    assert f'data-open="{astronaut["cluster"]}"' in page
    assert f'data-shown="{astronaut["cluster_size"]}"' in page.split('id="files"')[1][:300]
    members = re.search(rf'<tr class="members" data-members="{astronaut["cluster"]}"( hidden="")?>', page)
    assert members and not members.group(1)
    # Images start blurred; #blur=off shows them.
    assert 'data-blur="on"' in dom("") and 'data-blur="off"' in dom("blur=off")
