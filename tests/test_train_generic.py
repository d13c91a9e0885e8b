"""Generic evaluation, re-encoding, fine-tuning and the demo folder, exercised with the tiny test detector."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from tiny_detector import TinyDetector, make_tiny_weights

import forensics
from forensics.cli import main
from forensics.detectors import register
from forensics.detectors.base import FinetuneRecipe
from forensics.errors import ForensicsError
from forensics.media import open_media
from forensics.testing import face_photo, write_image, write_video, write_wav
from forensics.train.evaluate import collect, evaluate, format_report
from forensics.train.finetune import finetune, stratified_folds
from forensics.train.reencode import applies, default_variants, reencode
from forensics.weights import load_weights, user_weights_dir


@pytest.fixture()
def tiny(weights_home: Path) -> TinyDetector:
    register("tiny_test", TinyDetector)
    make_tiny_weights(user_weights_dir())
    return forensics.create_detector("tiny_test")


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Real: crops of the astronaut photo. Fake (sources 'tinted'/'warm'): the same crops colour-shifted."""
    root = tmp_path_factory.mktemp("labelled")
    real, fake = root / "real", root / "fake"
    img = face_photo()
    rng = np.random.default_rng(0)
    for i in range(8):
        y, x = rng.integers(0, 200, 2)
        crop = img[y : y + 300, x : x + 300]
        write_image((real / f"r{i}.jpg") if real.exists() else (real.mkdir() or real / f"r{i}.jpg"), crop)
        src = "tinted" if i % 2 else "warm"
        (fake / src).mkdir(parents=True, exist_ok=True)
        shifted = np.clip(crop * ([1.3, 0.8, 0.8] if src == "tinted" else [1.2, 0.9, 0.7]), 0, 255).astype(np.uint8)
        write_image(fake / src / f"f{i}.jpg", shifted)
    return real, fake


def test_reencode_variants(tmp_path: Path, media_dir: Path) -> None:
    v = reencode(media_dir / "talk.mp4", tmp_path, "half")
    info = open_media(v).info
    assert (info.width, info.height) == (160, 120) and info.has_audio
    assert open_media(reencode(media_dir / "talk.mp4", tmp_path, "crf32")).info.video_codec == "h264"
    img = open_media(reencode(media_dir / "face.png", tmp_path, "half")).info
    assert img.format == "jpeg" and img.width == 256
    a = open_media(reencode(write_wav(tmp_path / "s.wav"), tmp_path, "aac64")).info
    assert a.kind == "audio" and a.audio_codec == "aac"
    src = open_media(media_dir / "talk.mp4").info
    web = open_media(reencode(media_dir / "talk.mp4", tmp_path, "webcam")).info
    phone = open_media(reencode(media_dir / "talk.mp4", tmp_path, "phone")).info
    assert (web.fps, web.width, phone.fps, phone.width) == (pytest.approx(15), 160, pytest.approx(30), src.width)
    assert abs(web.duration - src.duration) < 0.1 and abs(phone.duration - src.duration) < 0.1 and web.has_audio
    assert not applies("webcam", a) and not applies("phone", img)


def test_aac64_on_a_video_changes_only_its_sound(tmp_path: Path, media_dir: Path) -> None:
    """A talking-head video keeps its picture bit for bit; its audio becomes AAC at 64 kbit/s (lip_sync and
    synthetic_speech read it); images, silent videos and unknown variants are refused, not passed through."""
    src = write_video(tmp_path / "talk_mp3.mkv", seconds=2.0, audio="speech", codec="libx264")
    out = reencode(src, tmp_path / "v", "aac64")
    a, b = open_media(src), open_media(out)
    assert b.info.kind == "video" and b.info.has_audio and b.info.audio_codec == "aac"
    fa = a.frames(fps=25.0, max_frames=100)
    fb = b.frames(fps=25.0, max_frames=100)
    assert len(fa) == len(fb) > 40 and all(np.array_equal(x.image, y.image) for x, y in zip(fa, fb, strict=True))
    wa, wb = a.audio(16000), b.audio(16000)
    n = min(len(wa), len(wb))
    assert abs(len(wa) - len(wb)) < 16000 * 0.1 and not np.array_equal(wa[:n], wb[:n])
    assert np.corrcoef(wa[2048 : n - 2048], wb[2048 : n - 2048])[0, 1] > 0.5  # the same sound, re-encoded
    # a container whose streams start late (MPEG-TS): sound and picture keep their timing
    ts = write_video(tmp_path / "talk.ts", seconds=2.0, audio="speech")
    wa, wb = open_media(ts).audio(16000), open_media(reencode(ts, tmp_path / "v", "aac64")).audio(16000)
    n = min(len(wa), len(wb)) - 800
    lag = max(range(-800, 801, 8), key=lambda d: float(np.dot(wa[800:n], wb[800 + d : n + d])))
    assert abs(lag) <= 16  # within 1 ms; a dropped start offset would move the sound by tens of ms
    for path, variant in ((media_dir / "face.png", "aac64"), (write_wav(tmp_path / "s.wav"), "half")):
        with pytest.raises(ValueError, match="does not apply"):
            reencode(path, tmp_path / "v", variant)
    silent = write_video(tmp_path / "silent.mp4", seconds=1.0, audio=None)
    assert not applies("aac64", open_media(silent).info) and applies("crf23", open_media(silent).info)
    with pytest.raises(ValueError, match="unknown variant"):
        applies("crf99", open_media(silent).info)


def test_default_variants_are_those_that_change_what_a_detector_reads() -> None:
    get = {n: default_variants(forensics.create_detector(n).spec) for n in forensics.list_detectors()}
    assert get["face_swap"] == get["gan_fingerprint"] == ("original", "crf23", "crf32", "half")
    assert get["lip_sync"] == get["synthetic_speech"] == ("original", "crf23", "crf32", "half", "aac64")


def test_evaluate_leaves_out_files_a_variant_does_not_change(
    tiny: TinyDetector, labelled: tuple[Path, Path], tmp_path: Path
) -> None:
    real, fake = labelled
    rep = evaluate(tiny, collect(real=[real], fake=[fake]), variants=("aac64",))
    m = rep["variants"]["aac64"]  # images only: nothing to re-encode, and nothing scored under that name
    assert m["not_applicable"] == 16 and m["files"] == {"ok": 0, "skipped": 0, "error": 0}
    assert "16 left out" in format_report(rep)
    with pytest.raises(ForensicsError, match="unknown variant"):
        evaluate(tiny, collect(real=[real], fake=[fake]), variants=("original", "crf99"))


def test_collect_sources_and_csv(labelled: tuple[Path, Path], tmp_path: Path) -> None:
    real, fake = labelled
    s = collect(real=[real], fake=[fake])
    assert sum(x.label == 0 for x in s) == 8 and {x.source for x in s if x.label} == {"tinted", "warm"}
    table = tmp_path / "t.csv"
    table.write_text(f"path,label,source\n{real / 'r0.jpg'},real,\n{fake / 'warm' / 'f0.jpg'},fake,warm\n")
    assert [x.label for x in collect(table=table)] == [0, 1]


def test_evaluate_reports_levels_sources_variants(
    tiny: TinyDetector, labelled: tuple[Path, Path], tmp_path: Path
) -> None:
    real, fake = labelled
    rep = evaluate(tiny, collect(real=[real], fake=[fake]), variants=("original", "half"), out_dir=tmp_path / "ev")
    m = rep["variants"]["original"]
    assert m["files"] == {"ok": 16, "skipped": 0, "error": 0}
    assert m["file"]["n_real"] == 8 and m["unit"]["n_fake"] == 8 and 0 <= m["file"]["auc"] <= 1
    assert set(m["by_source"]) == {"tinted", "warm"}
    assert {Path(p).name for p in m["plots"]} == {f"{k}_tiny_test_original.png" for k in ("roc", "det", "hist")}
    assert json.loads((tmp_path / "ev" / "metrics_tiny_test.json").read_text())["weights"] == tiny.weights_id
    assert "tiny_test" in format_report(rep)


def test_finetune_learns_and_registers(tiny: TinyDetector, labelled: tuple[Path, Path]) -> None:
    real, fake = labelled
    before = evaluate(tiny, collect(real=[real], fake=[fake]), variants=("original",))["variants"]["original"]
    seen: list[str] = []
    path = finetune("tiny_test", [real], [fake], tag="campaign", epochs=20, lr=0.1, batch_size=4, patience=5,
                    progress=lambda ev: seen.append(ev.kind))  # fmt: skip
    assert path.parent == user_weights_dir() and {"prepare", "train", "epoch"} <= set(seen)
    lw = load_weights("tiny_test.campaign")
    assert lw.card["parent"] == tiny.weights_id and lw.card["calibration"]["fpr"] == 0.01
    tuned = forensics.create_detector("tiny_test", "campaign")
    after = evaluate(tuned, collect(real=[real], fake=[fake]), variants=("original",))["variants"]["original"]
    assert after["file"]["auc"] >= max(before["file"]["auc"], 0.9)


def test_finetune_defaults_come_from_the_detector_recipe(
    tiny: TinyDetector, labelled: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real, fake = labelled
    recipe = FinetuneRecipe(epochs=3, lr=0.05, patience=3)
    monkeypatch.setattr(TinyDetector, "spec", dataclasses.replace(TinyDetector.spec, finetune=recipe))
    card = load_weights(finetune("tiny_test", [real], [fake], tag="recipe", batch_size=4)).card
    assert (card["recipe"]["epochs"], card["recipe"]["lr"], card["recipe"]["patience"]) == (3, 0.05, 3)
    assert 1 <= card["recipe"]["epochs_run"] <= 3
    card = load_weights(finetune("tiny_test", [real], [fake], tag="mine", epochs=1, patience=1, batch_size=4)).card
    assert (card["recipe"]["epochs"], card["recipe"]["lr"], card["recipe"]["epochs_run"]) == (1, 0.05, 1)
    assert main(["detectors"]) == 0
    assert "tiny_test" in (out := capsys.readouterr().out) and "finetune: 3 epochs, lr 0.05, patience 3" in out


def test_finetune_batches_units_of_different_shapes_separately(weights_home: Path, tmp_path: Path) -> None:
    """gan_fingerprint crops are smaller on small images: fine-tuning on mixed sizes once crashed."""
    real, fake = tmp_path / "real", tmp_path / "fake"
    real.mkdir(), fake.mkdir()
    img = face_photo()
    for i, side in enumerate((400, 100, 300, 88)):  # crops of 128, 96, 128 and 88 px
        write_image(real / f"r{i}.png", img[i * 20 : i * 20 + side, :side])
        up = np.repeat(np.repeat(img[: side // 2, : side // 2], 2, 0), 2, 1)  # nearest-upsampled: a fake trace
        write_image(fake / f"f{i}.png", up)
    shapes = {u.x.shape for f in [*real.iterdir(), *fake.iterdir()] for u in forensics.create_detector(
        "gan_fingerprint").units(open_media(f))}  # fmt: skip
    assert len(shapes) >= 3
    path = finetune("gan_fingerprint", [real], [fake], tag="mixed", epochs=1, batch_size=8)
    assert load_weights(path).card["recipe"]["epochs_run"] == 1
    assert forensics.create_detector("gan_fingerprint", "mixed").detect(fake / "f1.png").status == "ok"


def test_stratified_folds_deal_each_label_evenly() -> None:
    labels = [0] * 7 + [1] * 4
    folds = stratified_folds(labels, k=2, seed=3)
    assert sorted(np.bincount(folds[:7])) == [3, 4] and list(np.bincount(folds[7:])) == [2, 2]
    assert np.array_equal(folds, stratified_folds(labels, k=2, seed=3))
    assert any(not np.array_equal(folds, stratified_folds(labels, k=2, seed=s)) for s in range(4, 10))


def test_finetune_clear_errors(tiny: TinyDetector, labelled: tuple[Path, Path], tmp_path: Path) -> None:
    real, _ = labelled
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ForensicsError, match="both real and fake"):
        finetune("tiny_test", [real], [empty])
    one = tmp_path / "one"
    one.mkdir()
    write_image(one / "x.jpg")
    with pytest.raises(ForensicsError, match="at least 2 fake"):
        finetune("tiny_test", [real], [one])
    assert main(["finetune", "tiny_test", "--real", str(empty), "--fake", str(empty)]) == 2


def test_cli_evaluate(
    tiny: TinyDetector, labelled: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real, fake = labelled
    args = ["evaluate", "tiny_test", "--real", str(real), "--fake", str(fake), "--variants", "original"]
    assert main([*args, "--out", str(tmp_path / "o")]) == 0
    assert "AUC" in capsys.readouterr().out


def test_video_files_group_units(tiny: TinyDetector, tmp_path: Path) -> None:
    real, fake = tmp_path / "real", tmp_path / "fake"
    real.mkdir(), fake.mkdir()
    for i in range(2):
        write_video(real / f"r{i}.mp4", seconds=1.0, audio=None)
        frames = [np.full((240, 320, 3), 40 + 60 * i, np.uint8) + np.uint8(j) for j in range(25)]
        write_video(fake / f"f{i}.mp4", frames, audio=None)
    rows = evaluate(tiny, collect(real=[real], fake=[fake]), variants=("original",))["variants"]["original"]
    assert rows["file"]["n_real"] == 2 and rows["unit"]["n_real"] == 4  # 2 frames per 1 s video at 2 fps
