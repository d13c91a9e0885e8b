"""The one MANIFEST.tsv reader (forensics.train.manifest)."""

from __future__ import annotations

from pathlib import Path

from forensics.train.manifest import Row, held_out, read_manifest


def test_rows_and_held_out_sources(tmp_path: Path) -> None:
    (tmp_path / "MANIFEST.tsv").write_text(
        "file\tlabel\tkind\trepo\tmethod\torigin\n"
        "real_video/a__demo__00016.mp4\treal\tvideo\tsmeetrs/deep_avsr\tnone\tx\n"
        "fake_speech/b.wav\tfake\taudio\tjik876/hifi-gan-demo\tHiFi-GAN\t\n"
    )
    rows = read_manifest(tmp_path)
    assert rows[0] == Row("real_video/a__demo__00016.mp4", "real", "video", "smeetrs/deep_avsr", "none", "x")
    assert [r.folder for r in rows] == ["real_video", "fake_speech"]
    assert held_out(rows[0], ["smeetrs/deep_avsr"]) and held_out(rows[0], ["__00016"])  # by repository or path part
    assert not held_out(rows[1], ["smeetrs/deep_avsr", "00016"])
