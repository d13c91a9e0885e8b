"""Leave-family-out folds (forensics.train.families): grouping by method, no test page ever trained on."""

from __future__ import annotations

import numpy as np

from forensics.train.families import family, folds, is_face_edit, leave_family_out, markdown, summarise_folds
from forensics.train.manifest import Row


def _rows() -> list[Row]:
    rows = []
    for page, method, n in [
        ("a/hifigan-demo", "Tacotron 2 + HiFi-GAN (fine-tuned)", 3),
        ("a/hifigan-demo", "vocoder resynthesis: WaveGlow", 3),
        ("b/styletts2", "StyleTTS2 TTS", 3),
        ("b/styletts2", "VALL-E zero-shot TTS (Microsoft demo sample)", 3),
        ("c/valle-x", "VALL-E X zero-shot TTS (Plachtaa reproduction)", 3),
    ]:
        rows += [Row(f"fake_speech/{page}_{method[:5]}_{i}.wav", "fake", "audio", page, method) for i in range(n)]
        rows += [Row(f"real_speech/{page}_{method[:5]}_{i}.wav", "real", "audio", page, "none") for i in range(2)]
    rows += [Row(f"real_speech/d{j}_{i}.wav", "real", "audio", f"d/r{j}", "none") for j in range(4) for i in range(2)]
    return rows


def test_family_groups_qualified_methods_and_acoustic_model_first() -> None:
    assert family("VALL-E zero-shot TTS (Microsoft demo sample)") == family("VALL-E X cross-lingual TTS") == "VALL-E"
    assert family("Bark TTS (Vocos decoder)") == "Bark" and family("Vocos copy-synthesis (mel)") == "Vocos"
    assert family("Glow-TTS + HiFi-GAN (fine-tuned)") == family("vocoder resynthesis: HiFi-GAN V1") == "HiFi-GAN"
    assert family("none") == "none" and family("Some New System (v2)") == "Some New System"
    assert is_face_edit(Row("f.png", "fake", "image", "r", "SimSwap face swap"))
    assert not is_face_edit(Row("f.png", "fake", "image", "r", "Kandinsky 3"))


def test_folds_never_train_on_a_test_page_or_family() -> None:
    rows = _rows()
    fs = {f.family: f for f in folds(rows)}
    assert set(fs) == {"HiFi-GAN", "WaveGlow", "StyleTTS", "VALL-E"}
    for f in fs.values():
        test_repos = {r.repo for r in f.test}
        assert not test_repos & {r.repo for r in f.train}
        assert all(family(r.method) != f.family for r in f.train)
        assert any(r.label == "real" for r in f.test) and any(r.label == "fake" for r in f.test)
        assert {r.repo for r in f.test if r.repo.startswith("d/")}  # one real-only group rotates in
    # VALL-E fakes live on two pages: both pages (and StyleTTS2's other fakes) leave training
    assert not any(r.repo in ("b/styletts2", "c/valle-x") for r in fs["VALL-E"].train)


def test_leave_family_out_scores_and_summarises() -> None:
    rows = _rows()
    rng = np.random.default_rng(0)
    feats = {r.file: rng.normal(size=3) + (2.0 if r.label == "fake" else 0.0) for r in rows}
    table = leave_family_out(rows, feats, lambda x, y: x[y == 1].mean(0) - x[y == 0].mean(0), lambda w, x: x @ w)
    assert {t["family"] for t in table} == {"HiFi-GAN", "WaveGlow", "StyleTTS", "VALL-E"}
    s = summarise_folds(table)
    assert s["families"] == 4 and s["mean_auc"] > 0.8 and s["worst_auc"] <= s["mean_auc"]
    flipped = {k: -v for k, v in feats.items()}  # test side from another feature map
    worse = summarise_folds(leave_family_out(rows, feats, lambda x, y: x[y == 1].mean(0) - x[y == 0].mean(0),
                                             lambda w, x: x @ w, test_features=flipped))  # fmt: skip
    assert worse["mean_auc"] < 0.5
    assert "**worst**" in markdown(table)
