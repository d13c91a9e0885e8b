"""Weights cards: the one builder of a family's JSON card, the writer of weights + card, and the renderer of
the human-readable Markdown card beside it (``models/<name>.md``) from the JSON card's facts.

Each family's Markdown has its own measured sections (:data:`RENDERERS`); the title, the hand-written
``notes`` a re-run keeps (:func:`keep_notes`) and the writing are shared.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def build_card(
    detector: str,
    tag: str,
    *,
    architecture: str,
    args: dict[str, Any],
    preprocessing: dict[str, Any],
    calibration: dict[str, Any],
    training_data: Any,
    metrics: dict[str, Any],
    licence: str,
    recipe: dict[str, Any],
) -> dict[str, Any]:
    """A weights card with every field :func:`forensics.weights.save_weights` requires, in the order all
    families write them."""
    return {
        "name": f"{detector}.{tag}",
        "detector": detector,
        "architecture": {"name": architecture, "args": args},
        "preprocessing": preprocessing,
        "calibration": calibration,
        "training_data": training_data,
        "metrics": metrics,
        "licence": licence,
        "recipe": recipe,
    }


def keep_notes(card: dict[str, Any], folder: Path) -> dict[str, Any]:
    """``card`` with the hand-written ``notes`` (a version's history) of the card it replaces in ``folder``."""
    old = folder / f"{card['name']}.json"
    if old.exists() and (notes := json.loads(old.read_text()).get("notes")):
        card["notes"] = notes
    return card


def write_card(tensors: dict[str, Any], card: dict[str, Any], folder: Path, *, markdown: bool = True) -> Path:
    """Save the weights with their card (safetensors + JSON) and, where the family has a renderer and
    ``markdown`` is set, the Markdown card beside them; returns the safetensors path."""
    from forensics.weights import save_weights

    path = save_weights(tensors, card, folder)
    if markdown and card["detector"] in RENDERERS:
        path.with_suffix(".md").write_text(render_markdown(card, path))
    return path


def render_markdown(card: dict[str, Any], path: Path) -> str:
    """The Markdown card of weights ``path`` (its size and sha256 are read from the file) from its card."""
    return RENDERERS[card["detector"]](card, path)


def _notes(card: dict[str, Any]) -> list[str]:
    """The hand-written history kept in the card, as the Markdown card's last paragraph."""
    return [card["notes"], ""] if card.get("notes") else []


# -- face_swap ----------------------------------------------------------------------------------
def _robustness_lines(rob: dict | None) -> list[str]:
    if not rob:
        return []
    variants = [v for v in rob if v != "command"]
    groups = list(rob[variants[0]])
    head = "| source | " + " | ".join(f"{v} frame / video AUC" for v in variants) + " |"
    lines = ["", f"End to end through the detector, after re-encoding (`{rob['command']}`):", "", head]
    lines.append("|---" * (len(variants) + 1) + "|")
    for g in groups:
        cells = [
            f"{rob[v][g]['frame_auc']:.3f} / {rob[v][g]['video_auc']:.3f}" if g in rob[v] else "-" for v in variants
        ]
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    return lines


def _face_swap(card: dict, path: Path) -> str:
    """face_swap: the shared fakes per source, each fake against its original, re-encoded end to end."""
    from forensics.weights import sha256_file

    m = card["metrics"]
    sv = m["sbi_validation_pairs"]
    cal = card["calibration"]
    rows = [
        f"| {name} | {v['frame']['auc']:.3f} | {v['video']['auc']:.3f} | {v['video']['n_fake']} |"
        f" {v['video'].get('flagged_at_threshold', '-')} | {m['untrained_network_reference'][name]['video_auc']:.3f} |"
        for name, v in m["shared_fakes_vs_heldout_reals"].items()
    ]
    n_real = next(iter(m["shared_fakes_vs_heldout_reals"].values()))["video"]["n_real"]
    return "\n".join(
        [
            f"# {card['name']}",
            "",
            "Face-swap / face re-rendering detector: a small CNN (FaceSwapNet, "
            f"{card['architecture']['args']}) trained from scratch on CPU on self-blended images made from real"
            " faces only. It scores every face MTCNN finds (aligned crops, "
            f"{card['preprocessing']['size']} px, margin {card['preprocessing']['margin']},"
            f" {card['preprocessing']['sample_fps']} frames/s); the file score is the most suspicious face track's"
            " mean calibrated score.",
            "",
            f"- file: `{path.name}`, {path.stat().st_size / 1e6:.2f} MB, sha256 `{sha256_file(path)}`",
            f"- licence: {card['licence']}",
            f"- calibration: temperature {cal['temperature']:.3f}, bias {cal['bias']:.3f}, threshold"
            f" {cal['threshold']:.4f} at FPR {cal['fpr']} ({cal['aggregation']}). {cal['note']}",
            f"- recipe: {json.dumps(card['recipe'])}",
            "",
            "## Training data",
            "",
            f"- train: {card['training_data']['train']}",
            f"- validation: {card['training_data']['validation']}",
            f"- licences: {card['training_data']['licences']}",
            "",
            "## Measured (shared fakes vs held-out real videos; never trained on)",
            "",
            f"Command: `{m['command']}`. Each fake source is compared with all {n_real} held-out real videos."
            " Few fake videos per source: every number below is noisy (one video moves a source's AUC by"
            " 1/n_real). 'untrained' is the same pipeline with a random-init network: what chance, the"
            " multi-face track_max bias and format shortcuts give.",
            "",
            "| source | frame AUC | video AUC | fake videos | flagged at threshold | untrained video AUC |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"SBI validation pairs (held-out identities, synthetic): AUC {sv['auc']:.3f}"
            + (
                f" ({sv['lower_face_rerender_share']:.0%} lower-face re-renders; whole-face blends only:"
                f" {sv['whole_face_only_auc']:.3f})."
                if sv.get("lower_face_rerender_share")
                else "."
            ),
            "",
            "Each fake against the real video it was made from (same person, scene, encoder):",
            "",
            "| fake | source | fake file score | original file score | frame AUC vs original |",
            "|---|---|---|---|---|",
            *(
                f"| {k} | {p['source']} | {p['fake_file_score']:.3f} | {p['original_file_score']:.3f} |"
                f" {p['frame_auc_vs_original']:.3f} |"
                for k, p in m["fake_vs_own_original"].items()
            ),
            *_robustness_lines(m.get("end_to_end_reencoded")),
            "",
            f"Checkpoint step {m['checkpoint_step']}; {m['selection']}.",
            "",
            "## Limits",
            "",
            "- Trained on ~1,400 real face crops with only 5 landmarks (ellipse/hull masks, not 68/81-point hulls),"
            " at 128 px, on one CPU thread for tens of minutes: far from the SBI paper's EfficientNet-B4 at 380 px.",
            "- Lip-sync fakes (HyperLips) re-render only the mouth: lower-face re-render self-blends (recipe share"
            " above) help there only a little (see the table); lip_sync checks the mouth against the speech.",
            "- The 1% FPR threshold rests on few real validation videos, so it is effectively their maximum score.",
            "",
            *_notes(card),
        ]
    )


# -- lip_sync -----------------------------------------------------------------------------------
LOGIT_TEXT = {
    "median_gap": "the median similarity of clearly shifted audio (|d| >= 3 frames) minus the zero-shift similarity",
    "far_near_gap": "the best similarity of clearly shifted audio (|d| >= 3 frames) minus the best within 2 frames"
    " (0.08 s) of zero",
}


def _shift_line(r: dict) -> str:
    """One sentence of an ``eval_lip_sync.shift_test`` result."""
    return (
        f"{r['clips']} clips, {r['windows_shifted']} shifted / {r['windows_aligned']} aligned speech windows: shift"
        f" detected (|offset| > 0.08 s) in {r['shift_detected_rate']:.1%}, offset within 0.08 s in"
        f" {r['offset_error_le_0.08s_rate']:.1%}"
        + (
            f" ({o:.1%} against the shift plus the recording's own offset with its own audio)"
            if (o := r.get("offset_error_vs_shift_plus_own_offset_le_0.08s_rate")) is not None
            else ""
        )
        + "; over the card's window threshold"
        f" ({r.get('window_threshold', float('nan')):.3f}): shifted {r['shifted_windows_flagged_rate']:.1%},"
        f" aligned {r['aligned_windows_flagged_rate']:.1%}; **the window score that flags 5% of aligned windows flags"
        f" {r['shifted_windows_flagged_at_that_threshold']:.1%} of shifted ones**; shifted vs aligned files AUC"
        f" {r['files_shifted_vs_aligned']['auc']:.3f}"
        + (
            f"; files flagged at the card's threshold: shifted as a whole {r['shifted_files_flagged_rate']:.1%},"
            f" aligned {r['aligned_files_flagged_rate']:.1%}; shifted files described as a constant offset"
            f" {r['shifted_files_constant_offset_rate']:.1%}"
            if "shifted_files_flagged_rate" in r
            else ""
        )
    )


def _training_run_lines(met: dict) -> list[str]:
    """The card's training-run paragraph: one network's, or one line per ensemble member."""
    if "members" in met:
        lines = ["## Training runs of the members (cached features, the training script's rule and calibration)", ""]
        for name, m in met["members"].items():
            sh = m["held_out_shifted_audio"]
            lines.append(
                f"- {name} (`{m['command']}`): shift detected in {sh['shift_detected_rate']:.1%} of held-out shifted"
                f" windows, offset within 0.08 s in {sh['offset_within_0.08s_rate']:.1%}, aligned windows with an"
                f" offset over 0.08 s {sh['unshifted_offset_flagged_rate']:.1%}, unit AUC"
                f" {sh['unit_summary']['auc']:.3f}."
            )
        return [*lines, ""]
    shift, hyper = met["held_out_shifted_audio"], met["hyperlips_fake_vs_real_inputs"]
    return [
        f"## Training run ({met['command']}; cached features, the training script's rule and calibration)",
        "",
        f"Held-out real clips, audio shifted by {shift['shifts_s']} s ({shift['data']}):"
        f" shift detected (|offset| > 0.08 s) in {shift['shift_detected_rate']:.1%} of {shift['windows_shifted']}"
        f" speech windows; offset within 0.08 s in {shift['offset_within_0.08s_rate']:.1%}; aligned windows with"
        f" |offset| > 0.08 s: {shift['unshifted_offset_flagged_rate']:.1%}; aligned windows over the threshold:"
        f" {shift['aligned_windows_flagged_at_threshold']:.1%}; shifted windows over the threshold:"
        f" {shift['shifted_windows_flagged_at_threshold']:.1%}; unit AUC {shift['unit_summary']['auc']:.3f}."
        f" HyperLips lip-sync fakes vs their real input videos (video level): AUC {hyper['auc']:.3f}"
        f" ({hyper['n_fake']} fake, {hyper['n_real']} real). {met['note']}.",
        "",
    ]


def _context_text(prep: dict, rule: str) -> str:
    """How a window's sync curve becomes its offset, confidence and logit, in the context of its track."""
    smooth, smoothing = int(prep.get("smooth_windows", 1)), prep.get("smoothing", "logits")
    if smoothing == "offset_hmm":
        return (
            " scores each audio offset; each window is read in the context of its whole face track: a hidden Markov"
            " chain over the audio"
            f" offset (it stays from one window to the next or, with probability {prep['hmm_switch']:g}, jumps:"
            f" a splice, a dub) scores each offset of a window's curve with log-likelihood {prep['hmm_beta']:g} x"
            " similarity, and forward-backward gives every window its posterior over offsets given all windows."
            " The estimated offset is the most probable one (evidence `offset_probability`: its posterior mass"
            " within 0.08 s), the logit log P(|offset| > 0.08 s) - log P(|offset| <= 0.08 s) (higher = out of"
            f" sync), the confidence max - median of the curve averaged over {smooth} windows."
            + (
                " Offsets are measured from the track's steady offset, not from zero, when it has one (in sync, or"
                f" one offset held by {prep['steady_share']:.0%} of its windows with mean confidence >="
                f" {prep['steady_confidence']:g}): a whole recording shifted by an encoder or a re-upload is reported"
                " as a constant offset (evidence `offset_pattern`), not scored as out of sync; each window's score"
                " against zero offset stays in the evidence (`zero_offset_score`)."
                if prep.get("offset_reference") == "track"
                else ""
            )
        )
    head = (
        " gives the estimated offset (argmax), the confidence (max - median) and the logit"
        f" (`{rule}`: {LOGIT_TEXT[rule]}, x10; higher = out of sync)"
    )
    if smooth > 1:
        what = "curve" if smoothing == "curves" else "logit"
        return f"{head}, each window's {what} averaged with its neighbours over {smooth} windows of its track."
    return f"{head}."


def _lip_sync(card: dict, path: Path) -> str:
    """lip_sync: the full-detector tests of ``forensics.train.lip_sync_eval`` and the training runs."""
    from forensics.train.reencode import VARIANTS

    cal, td, met, rec = card["calibration"], card["training_data"], card["metrics"], card["recipe"]
    members = card["architecture"]["args"].get("members", 1)
    rule = card["architecture"]["args"].get("logit_rule", "median_gap")
    fp = met.get("full_pipeline")
    lines = [
        f"# {card['name']}",
        "",
        "Lip-sync mismatch detector: a two-stream network (grey 32x64 mouth clips at 25 fps, 40-band log-mel at"
        " 100 frames/s) embeds both streams at the video rate"
        + (
            f" ({members} such networks trained alike from different seeds, their curves averaged)"
            if members > 1
            else ""
        )
        + "; the similarity of a 1 s mouth clip with its audio shifted by -0.6..+0.6 s (its sync curve)"
        + _context_text(card["preprocessing"], rule),
        "",
        f"- Architecture: `{card['architecture']['name']}` {json.dumps(card['architecture']['args'])}",
        f"- Calibration: temperature {cal['temperature']:.4g}, bias {cal['bias']:.4g}, threshold {cal['threshold']:.4g}"
        f" at {cal['fpr']:.0%} FPR on held-out aligned files, aggregation `{cal['aggregation']}`. {cal['note']}.",
        f"- Training data: {td['sources']}. Split: {td['split']}. Licences: {td['licences']}.",
        f"- Held-out clips: {', '.join(td['validation'])}.",
        f"- Recipe: {json.dumps(rec)}.",
        f"- Licence: {card['licence']}.",
        *([f"- Lineage: {card['lineage']}"] if card.get("lineage") else []),
        "",
    ]
    if fp:
        lines += [
            f"## Measured through the full detector (`{fp['command']}`: decode, faces, crops, audio, calibration)",
            "",
            f"- Held-out real clips, audio shifted by +-0.3/0.4/0.5 s: {_shift_line(fp['held_out_shifted_audio'])}.",
            *(
                [
                    "- HyperLips clips (the 2 real input videos and the 5 fakes, whose lips were rendered in sync with"
                    " their audio; 720p; never trained on nor used to choose anything), audio shifted the same way:"
                    f" {_shift_line(h)}."
                ]
                if (h := fp.get("hyperlips_clips_shifted_audio"))
                else []
            ),
            *(
                [
                    f"- Dubbing ({d['clips']} clips: the held-out ones and the HyperLips inputs, each with the next"
                    f" clip's speech): {d['dubbed_windows_flagged_rate']:.1%} of {d['windows_dubbed']} dubbed windows"
                    f" flagged at the window threshold ({d['own_audio_windows_flagged_rate']:.1%} with their own"
                    f" audio); dubbed vs own files AUC {d['files_dubbed_vs_own']['auc']:.3f}."
                ]
                if (d := fp.get("dubbed_audio"))
                else []
            ),
            *(
                [
                    f"- Localisation ({sp['clips']} clips, audio delayed {sp['shift_s']} s from the midpoint on):"
                    f" {sp['after_flagged_rate']:.1%} of {sp['windows_after']} windows more than 1 s after the splice"
                    f" flagged, {sp['before_flagged_rate']:.1%} of {sp['windows_before']} more than 1 s before; the"
                    f" first desync span reaching past the splice starts {sp['median_abs_onset_error_s']:.2f} s from"
                    f" it (median; {sp['clips_with_a_span_after']} clips with such a span)."
                ]
                if (sp := fp.get("spliced_audio"))
                else []
            ),
            *(
                [
                    f"- Drift ({dr['clips']} clips, audio falling behind {dr['rate_s_per_s']} s per second):"
                    f" {dr['behind_flagged_rate']:.1%} of {dr['windows_behind_ge_0.2s']} windows at least 0.2 s behind"
                    f" flagged, {dr['near_flagged_rate']:.1%} of {dr['windows_behind_le_0.08s']} still within 0.08 s;"
                    f" offsets within 0.08 s of the delay plus the recording's own offset in"
                    f" {dr['offset_within_0.08s_of_delay_plus_own_rate']:.1%}."
                ]
                if (dr := fp.get("drifting_audio"))
                else []
            ),
            *(
                [
                    f"- Bursts ({bu['clips']} clips; audio around the midpoint delayed 0.4 s or replaced by another"
                    " speaker's speech): windows inside flagged (windows more than 1 s away flagged): "
                    + "; ".join(
                        f"{k.replace('s_', ' s ')} {v['inside_flagged_rate']:.1%} of {v['windows_inside']}"
                        f" ({v['away_flagged_rate']:.1%} of {v['windows_away']})"
                        for k, v in bu.items()
                        if k != "clips" and v["windows_inside"] and v["windows_away"]
                    )
                    + "."
                ]
                if (bu := fp.get("audio_bursts"))
                else []
            ),
            *(
                [
                    "- Platform re-encoding (`forensics.train.reencode`, as `forensics evaluate`; the 8 held-out clips"
                    " and the 2 HyperLips inputs re-encoded, then their audio shifted as above): "
                    + "; ".join(
                        f"{v}: 5 % rule {r['shifted_windows_flagged_at_that_threshold']:.1%}, at the window threshold"
                        f" shifted {r['shifted_windows_flagged_rate']:.1%} / aligned"
                        f" {r['aligned_windows_flagged_rate']:.1%}, offset within 0.08 s"
                        f" {r['offset_error_le_0.08s_rate']:.1%}"
                        for v, r in sorted(enc.items(), key=lambda kv: VARIANTS.index(kv[0]))
                    )
                    + "."
                ]
                if (enc := fp.get("reencoded_shifted_audio"))
                else []
            ),
            f"- HyperLips fakes vs their real input videos (file level): AUC"
            f" {fp['hyperlips_fake_vs_real_inputs']['auc']:.3f}.",
            f"- {fp['compute_s_per_video_s_720p']} s of compute per second of 720p video (1 thread, shared CPU).",
            "",
        ]
    lines += [
        *_training_run_lines(met),
        "Limits: trained from scratch on about two minutes of speech from some 30 clips; 1 s windows are noisy,"
        " the per-track curve (evidence `track_curve_offset_s`) is steadier. Audio-driven lip generators such as"
        " HyperLips render lips in sync with the audio by construction: this detector finds desynchronised"
        " (shifted, drifting, dubbed) audio, not re-rendered lips, and scores those fakes as in sync. The"
        " voice-activity test is energy-based (music passes it).",
        "",
        *_notes(card),
    ]
    return "\n".join(lines)


# -- gan_fingerprint ----------------------------------------------------------------------------
def _gan_fingerprint(card: dict, path: Path) -> str:
    """gan_fingerprint: metrics per protocol and family, rendered from the card as stored (keys sorted)."""
    from forensics.train import gan_fingerprint_data as gd
    from forensics.weights import sha256_file

    card = json.loads(json.dumps(dict(card, file=path.name, sha256=sha256_file(path)), sort_keys=True))
    if card["architecture"]["name"] == "ResidualSpectralHead":
        return _gan_fingerprint_head(card)
    cal, rec = card["calibration"], card["recipe"]
    unseen = card["metrics"]["q90_512"]["unseen_families"]
    lines = [
        f"# {card['name']}",
        "",
        "GAN / diffusion upsampling-trace detector for images and sampled video frames (issue 4).",
        f"`ResidualFingerprintNet{tuple(card['architecture']['args'].items())}`: NPR + Laplacian residuals, small CNN, "
        "one logit per native-resolution crop; penultimate embedding used for fingerprint attribution.",
        "",
        f"- file: `{card['file']}`, sha256 `{card['sha256']}`",
        f"- preprocessing: `{json.dumps(card['preprocessing'])}`",
        f"- calibration: temperature {cal['temperature']:.4f}, bias {cal['bias']:.4f}, "
        f"threshold {cal['threshold']:.4f} at FPR {cal['fpr']}, aggregation `{cal['aggregation']}`. {cal['note']}",
        f"- licence: {card['licence']}",
        "",
        f"**Goal of issue 4 (AUC >= 0.95 on unseen generators, JPEG q90 at 512 px): "
        f"{'met' if unseen['auc'] >= 0.95 else 'NOT met'}** (AUC {unseen['auc']:.3f} on unseen families, "
        f"{card['metrics']['q90_512']['all']['auc']:.3f} with the seen generated-faces half; 1-19 files per family).",
        "",
        "## Training data",
        "",
        f"- train real: {card['training_data']['train']['real']}",
        f"- train fake: {card['training_data']['train']['fake']}",
        f"- validation real: {card['training_data']['validation']['real']}",
        f"- validation fake: {card['training_data']['validation']['fake']}",
        f"- licences: {card['training_data']['licences']}",
        "",
        "## Metrics (file level, held-out generators vs held-out real sources)",
        "",
        f"Command: `{card['metrics']['command']}`. Protocols: `q90_512` JPEG q90, centre crop to 512 px; `q75_half` "
        "then 0.5x resize and JPEG q75; `_resize` variants resize the long side to 512 px instead of cropping.",
        "",
        "| protocol | family | n_real | n_fake | AUC | AP | TPR@1%FPR | TPR@threshold |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for prot in gd.PROTOCOLS:
        for fam, m in card["metrics"][prot].items():
            lines.append(
                f"| {prot} | {fam} | {m['n_real']} | {m['n_fake']} | {m['auc']:.3f} | {m['ap']:.3f} | "
                f"{m['tpr@0.01fpr']:.3f} | {m['tpr@threshold']:.3f} |"
            )
    lines += ["", "## Recipe", "", *[f"- {k}: {v}" for k, v in rec.items()], ""]
    return "\n".join(lines)


def _gan_fingerprint_head(card: dict) -> str:
    """gan_fingerprint feature head: the leave-family-out per-family tables as measured, as is and after
    JPEG q75 + half size."""
    from forensics.train.families import markdown

    cal, met, td = card["calibration"], card["metrics"], card["training_data"]
    s, q = met["as_is"], met["q75_half"]
    readers = list(card["preprocessing"].get("readers", {}).values())
    needs = (
        f" It also reads the patch features of {', '.join(f'`{r}`' for r in readers)}: research-only published"
        f" weights that are not shipped; install them first (`forensics weights get {' '.join(readers)}`, or"
        " offline `--from FOLDER` holding the publisher's files)."
        if readers
        else " Self-contained."
    )
    goal = s["mean_auc"] >= 0.93 and s["worst_auc"] >= 0.80 and q["mean_auc"] >= s["mean_auc"] - 0.05
    lines = [
        f"# {card['name']}",
        "",
        "Generated-image detector for images and sampled video frames (issue 26): a logistic / small MLP head over"
        " frozen features of each frame's centre square at native resolution, the feature blocks"
        f" {', '.join(card['preprocessing'].get('blocks', ['residual', 'spectral']))} (`residual`: the shipped"
        " `residual_v1` network's crop embeddings and logits, its tensors copied in; `spectral`: the noise residual's"
        " azimuthally averaged power spectrum and periodic peaks of 2/4/8-pixel upsampling grids; `ladeda_*`:"
        " Tiny-LaDeDa's pooled patch features)." + needs,
        "",
        f"- file: `{card['file']}`, sha256 `{card['sha256']}`",
        f"- architecture: `{json.dumps(card['architecture'])}`",
        f"- preprocessing: `{json.dumps(card['preprocessing'])}`",
        f"- calibration: temperature {cal['temperature']:.4f}, bias {cal['bias']:.4f}, threshold"
        f" {cal['threshold']:.4f} at FPR {cal['fpr']}, aggregation `{cal['aggregation']}`. {cal['note']}",
        f"- licence: {card['licence']}",
        "",
        f"**Goal of issue 26 (leave-family-out mean AUC >= 0.93, worst >= 0.80, within 0.05 after q75 + half):"
        f" {'met' if goal else 'NOT met'}** (as is: mean {s['mean_auc']:.3f}, worst {s['worst_auc']:.3f};"
        f" after q75 + half: mean {q['mean_auc']:.3f}, worst {q['worst_auc']:.3f}).",
        "",
        "## Training data",
        "",
        *[f"- {k}: {v}" for k, v in td.items()],
        "",
        f"## Leave-family-out (`{met['command']}`)",
        "",
        f"Protocol: {met['protocol']}. Each fold trains on every other family and page and tests on the held-out"
        " family with its pages' reals and a rotating group of real-only sources. Selection rule, fixed before"
        f" measuring: {met['selection']}.",
        "",
        "As is (JPEG q90, 256 px centre crop):",
        "",
        markdown(met["families"]["as_is"]),
        "",
        "After JPEG q75 + half size:",
        "",
        markdown(met["families"]["q75_half"]),
        "",
        "## Recipe",
        "",
        *[f"- {k}: {v}" for k, v in card["recipe"].items()],
        "",
        *_notes(card),
    ]
    return "\n".join(lines)


# -- mouth_render --------------------------------------------------------------------------------
def _mouth_render(card: dict, path: Path) -> str:
    """mouth_render: the held-out test (talking-head fakes vs unseen real talking heads), per method."""
    from forensics.weights import sha256_file

    m, cal, prep = card["metrics"], card["calibration"], card["preprocessing"]
    t = m["held_out_test"]
    methods = [
        f"| {k} | {len(v)} | {', '.join(f'{x:.3f}' for x in v)} |" for k, v in t["per_method_file_scores"].items()
    ]
    return "\n".join(
        [
            f"# {card['name']}",
            "",
            "Re-rendered mouth detector: a small CNN (MouthRenderNet, "
            f"{card['architecture']['args']}) trained from scratch on CPU on real talking heads and re-rendered"
            f" mouths made from them. Units: {prep['clip_frames']} consecutive grey lower-face crops"
            f" ({prep['mouth_width']} px, {prep['fps']} frames/s) every {prep['hop_frames']} frames; the file score"
            " is the most suspicious face track's mean calibrated score.",
            "",
            f"- file: `{path.name}`, {path.stat().st_size / 1e6:.2f} MB, sha256 `{sha256_file(path)}`",
            f"- licence: {card['licence']}",
            f"- calibration: temperature {cal['temperature']:.3f}, bias {cal['bias']:.3f}, threshold"
            f" {cal['threshold']:.4f} at FPR {cal['fpr']} ({cal['aggregation']}), window threshold"
            f" {cal['window_threshold']:.4f}. {cal['note']}",
            f"- recipe: {json.dumps(card['recipe'])}",
            "",
            "## Training data",
            "",
            *(f"- {k}: {v}" for k, v in card["training_data"].items()),
            "",
            "## Measured (held-out sources; never trained on nor used to choose anything)",
            "",
            f"Command: `{m['command']}`. Validation AUC (real clips vs re-renders, validation sources):"
            f" {m['validation_auc_rerendered_clips']:.3f}.",
            "",
            "| real / fake files | file AUC | TPR@1%FPR | real flagged | fake flagged |",
            "|---|---|---|---|---|",
            f"| {t['n_real']} / {t['n_fake']} | {t['auc']:.3f} | {t['tpr@0.01fpr']:.2f} | {t['real_flagged']:.0%} |"
            f" {t['fake_flagged']:.0%} |",
            "",
            "| method | files | file scores |",
            "|---|---|---|",
            *methods,
            "",
            *_notes(card),
        ]
    )


RENDERERS: dict[str, Callable[[dict[str, Any], Path], str]] = {
    "face_swap": _face_swap,
    "lip_sync": _lip_sync,
    "gan_fingerprint": _gan_fingerprint,
    "mouth_render": _mouth_render,
}
