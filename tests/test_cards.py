"""The one card renderer (forensics.train.cards) against the Markdown cards shipped in models/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forensics.train.cards import RENDERERS, build_card, keep_notes, render_markdown

MODELS = Path(__file__).resolve().parents[1] / "models"
RENDERED = sorted(p for p in MODELS.glob("*.json") if p.name.split(".")[0] in RENDERERS)


def _canonical(lines: list[str]) -> list[str]:
    """Lines as sorted multisets of characters: the JSON card stores its keys sorted, so dicts and rows that
    follow a dict's order were written in another order than a re-render from the JSON card gives."""
    return sorted("".join(sorted(line)) for line in lines)


@pytest.mark.parametrize("card_path", RENDERED, ids=lambda p: p.stem)
def test_shipped_markdown_renders_from_its_card(card_path: Path) -> None:
    card = json.loads(card_path.read_text())
    rendered = render_markdown(card, card_path.with_suffix(".safetensors")).splitlines()
    shipped = card_path.with_suffix(".md").read_text().splitlines()
    # the shipped card starts with the rendered one; hand-written sections may follow it
    assert _canonical(shipped[: len(rendered)]) == _canonical(rendered)


def test_every_rendered_family_ships_a_card() -> None:
    assert {p.name.split(".")[0] for p in RENDERED} == set(RENDERERS)


def test_build_card_and_keep_notes(tmp_path: Path) -> None:
    fields = {"preprocessing": {}, "calibration": {}, "training_data": "d", "metrics": {}, "licence": "l", "recipe": {}}
    card = build_card("face_swap", "x", architecture="FaceSwapNet", args={"widths": [1]}, **fields)
    assert card["name"] == "face_swap.x" and card["architecture"] == {"name": "FaceSwapNet", "args": {"widths": [1]}}
    (tmp_path / "face_swap.x.json").write_text(json.dumps({"notes": "history"}))
    assert keep_notes(dict(card), tmp_path)["notes"] == "history"
    assert "notes" not in keep_notes(dict(card), tmp_path / "elsewhere")
