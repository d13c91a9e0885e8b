"""What a file declares about its origin, read beside detection and recorded as evidence, never as a score.

Each fact is an entry ``{"source", "field", "value"}``: ``source`` is where it was read (``container``,
``stream:N``, ``exif``, ``xmp``, ``png``, ``c2pa``, ``watermark``) and ``field`` the tag, chunk, assertion or
mark. Summaries sit beside the entries: ``software`` (known editing and generation tools named anywhere,
with the field that named them), ``digital_source_type`` (IPTC, from XMP or a C2PA action), ``c2pa``
(claim generator, actions, signature state and status codes), ``watermark`` and ``dates`` (container
creation time, EXIF time, file time: the clusters' "earliest seen" reads them). A reader that fails adds
to ``errors`` and costs nothing else.

Readers: PyAV's container and stream tags (``encoder``, ``creation_time``, ``handler_name``,
``com.apple.quicktime.*``, ``com.android.*``), Pillow's EXIF and PNG text chunks (``parameters`` of
AUTOMATIC1111, ``prompt``/``workflow`` of ComfyUI), the XMP packet wherever it sits in the file (IPTC
``DigitalSourceType``, ``CreatorTool``), C2PA through c2pa-python (the ``triage`` extra; without it a note
in ``errors``), and the DWT-DCT invisible watermarks of Stable Diffusion's reference scripts and SDXL
pipelines (images only), read by :func:`dwt_dct_bits`, the invisible-watermark decoder restated in numpy:
that package declares opencv-python and torch as dependencies and would put a second OpenCV beside
opencv-python-headless.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MAX_TEXT = 2000  # characters kept of one value (a ComfyUI workflow runs to hundreds of kB)
XMP_SCAN_BYTES = 4 << 20  # an XMP packet is looked for in the first and last 4 MiB

# Known tools, by what they say of a file: generators make content, editors change it, encoders re-encode it.
SOFTWARE = {
    "generator": (
        "Stable Diffusion", "SDXL", "ComfyUI", "AUTOMATIC1111", "NovelAI", "Midjourney", "DALL-E", "DALL·E",
        "Adobe Firefly", "Imagen", "Gemini", "Sora", "Runway", "Pika", "Kling", "Luma", "HeyGen", "Synthesia",
        "D-ID", "ElevenLabs", "DeepFaceLab", "FaceFusion", "roop", "Deep-Live-Cam", "FaceApp", "Reface",
        "InvokeAI", "Fooocus", "Flux", "Hunyuan", "Kandinsky", "Leonardo", "Ideogram", "Grok", "OpenAI",
    ),
    "editor": (
        "Adobe Photoshop", "Lightroom", "Adobe Premiere", "After Effects", "GIMP", "CapCut", "InShot", "VN Video",
        "DaVinci Resolve", "Final Cut", "iMovie", "Snapseed", "Canva", "Picsart", "Meitu", "FaceTune",
    ),
    "encoder": ("Lavf", "Lavc", "HandBrake", "x264", "x265", "libvpx", "ffmpeg"),
}  # fmt: skip
_SOFTWARE_RE = [
    (kind, name, re.compile(rf"(?<![A-Za-z]){re.escape(name)}(?![A-Za-z])", re.I))
    for kind, names in SOFTWARE.items()
    for name in names
]
PNG_GENERATION_KEYS = ("parameters", "prompt", "workflow", "negative_prompt", "sd-metadata", "invokeai_metadata")
EXIF_TAGS = {0x010F: "Make", 0x0110: "Model", 0x0131: "Software", 0x0132: "DateTime", 0x013B: "Artist",
             0x010E: "ImageDescription", 0x8298: "Copyright"}  # fmt: skip
EXIF_IFD_TAGS = {0x9003: "DateTimeOriginal", 0x9004: "DateTimeDigitized", 0x9286: "UserComment",
                 0xA433: "LensMake", 0xA434: "LensModel"}  # fmt: skip
XMP_FIELDS = ("Iptc4xmpExt:DigitalSourceType", "xmp:CreatorTool", "xmp:CreateDate", "photoshop:DateCreated",
              "xmpMM:DocumentID", "dc:creator", "tiff:Software", "photoshop:Credit")  # fmt: skip
# Invisible watermarks generators embed by default (method dwtDct): the mark read and what it spells.
WATERMARKS = {
    "stable_diffusion_v1": ("bytes", 136, b"StableDiffusionV1"),  # CompVis txt2img.py
    "stable_diffusion_v2": ("bytes", 32, b"SDV2"),  # Stability-AI stablediffusion scripts
    "sdxl": ("bits", 48, "101100111110110010010000011110111011000110011110"),  # diffusers SDXL, generative-models
}
PROVENANCE_COLUMNS = ["prov_software", "prov_generator", "prov_digital_source_type", "prov_c2pa",
                      "prov_watermark", "prov_created"]  # fmt: skip


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    s = str(value).replace("\x00", "").strip()
    return s if len(s) <= MAX_TEXT else s[:MAX_TEXT] + f"… ({len(s)} characters)"


class _Facts:
    def __init__(self) -> None:
        self.evidence: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.dates: dict[str, str] = {}
        self.extra: dict[str, Any] = {}

    def add(self, source: str, field: str, value: Any) -> None:
        if value is None or value == "":
            return
        self.evidence.append(
            {
                "source": source,
                "field": field,
                "value": value if isinstance(value, (int, float, bool, list, dict)) else _text(value),
            }
        )

    def date(self, name: str, value: str | None) -> None:
        iso = _iso(value)
        if iso and name not in self.dates:
            self.dates[name] = iso


def _iso(value: Any) -> str | None:
    """An ISO 8601 time from a container (``2024-05-01T10:00:00.000000Z``) or EXIF (``2024:05:01 10:00:00``) value."""
    if not value:
        return None
    s = str(value).strip().replace("Z", "+00:00")
    m = re.match(r"^(\d{4}):(\d\d):(\d\d)[ T](\d\d:\d\d:\d\d)", s)
    if m:
        s = f"{m[1]}-{m[2]}-{m[3]}T{m[4]}"
    try:
        d = datetime.fromisoformat(s)
    except ValueError:
        return None
    if d.year < 1971:  # a zeroed QuickTime date (1904) or EXIF placeholder says nothing
        return None
    return (d if d.tzinfo else d.replace(tzinfo=UTC)).isoformat(timespec="seconds")


# -- readers -------------------------------------------------------------------------------------


def _container(path: Path, facts: _Facts) -> None:
    import av

    with av.open(str(path), metadata_errors="replace") as c:
        for k, v in sorted(c.metadata.items()):
            facts.add("container", k, v)
            if k in ("creation_time", "com.apple.quicktime.creationdate", "date"):
                facts.date("creation_time", v)
        for i, s in enumerate(c.streams):
            for k, v in sorted(s.metadata.items()):
                facts.add(f"stream:{i}", k, v)
                if k == "creation_time":
                    facts.date("creation_time", v)


def _image(path: Path, facts: _Facts, png_text: dict[str, str]) -> None:
    from PIL import Image

    with Image.open(path) as im:
        exif = im.getexif()
        for tag, name in EXIF_TAGS.items():
            facts.add("exif", name, exif.get(tag))
        ifd = exif.get_ifd(0x8769) if exif else {}
        for tag, name in EXIF_IFD_TAGS.items():
            facts.add("exif", name, ifd.get(tag))
        facts.date("exif_datetime", ifd.get(0x9003) or exif.get(0x0132))
        for k, v in im.info.items():
            if isinstance(v, (str, bytes)) and k not in ("exif", "icc_profile", "xmp", "XML:com.adobe.xmp"):
                facts.add("png" if im.format == "PNG" else (im.format or "image").lower(), k, v)
                if k in PNG_GENERATION_KEYS:
                    png_text[k] = _text(v)


def _xmp(path: Path, facts: _Facts) -> None:
    """Fields of the XMP packet, wherever the format keeps it (JPEG APP1, PNG iTXt, MP4 uuid, WebP chunk)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(XMP_SCAN_BYTES)
        tail = b""
        if size > XMP_SCAN_BYTES:
            fh.seek(max(XMP_SCAN_BYTES, size - XMP_SCAN_BYTES))
            tail = fh.read()
    for blob in (head, tail):
        start = blob.find(b"<x:xmpmeta")
        end = blob.find(b"</x:xmpmeta>", start)
        if start < 0 or end < 0:
            continue
        xmp = blob[start:end].decode("utf-8", "replace")
        for name in XMP_FIELDS:
            m = re.search(rf'{re.escape(name)}="([^"]*)"', xmp) or re.search(
                rf"<{re.escape(name)}>\s*(?:<rdf:\w+>\s*<rdf:li[^>]*>)?([^<]*)<", xmp
            )
            if m and m[1].strip():
                facts.add("xmp", name, m[1].strip())
                if name == "Iptc4xmpExt:DigitalSourceType":
                    facts.extra.setdefault("digital_source_type", m[1].strip())
        return


def _c2pa(path: Path, facts: _Facts) -> None:
    try:
        import c2pa
    except ImportError:
        facts.errors.append("c2pa: not read (pip install 'forensics[triage]')")
        return
    try:
        reader = c2pa.Reader(str(path))
    except Exception as exc:  # c2pa raises its own error types; "no manifest" is the common answer
        if "ManifestNotFound" not in type(exc).__name__ + str(exc) and "not supported" not in str(exc).lower():
            facts.errors.append(f"c2pa: {type(exc).__name__}: {exc}")
        return
    with reader:
        store = json.loads(reader.json())
        state = reader.get_validation_state()
    active = store.get("manifests", {}).get(store.get("active_manifest") or "", {})
    gen = active.get("claim_generator") or ", ".join(
        " ".join(filter(None, [g.get("name"), g.get("version")])) for g in active.get("claim_generator_info", [])
    )
    actions = []
    for a in active.get("assertions", []):
        if str(a.get("label", "")).startswith("c2pa.actions"):
            for act in (a.get("data") or {}).get("actions", []):
                agent = act.get("softwareAgent")
                actions.append(
                    {
                        "action": act.get("action"),
                        "digital_source_type": act.get("digitalSourceType"),
                        "software_agent": agent.get("name") if isinstance(agent, dict) else agent,
                    }
                )
    status = [s.get("code") for s in store.get("validation_status", []) if isinstance(s, dict)]
    sig = active.get("signature_info") or {}
    summary = {
        "claim_generator": gen or None,
        "title": active.get("title"),
        "actions": actions,
        "signature": {"state": state, "issuer": sig.get("issuer"), "common_name": sig.get("common_name"),
                      "alg": sig.get("alg"), "time": sig.get("time"), "status": status},
        "manifests": len(store.get("manifests", {})),
    }  # fmt: skip
    facts.extra["c2pa"] = summary
    facts.add("c2pa", "claim_generator", gen)
    for act in actions:
        facts.add("c2pa", "c2pa.actions", act)
        if act.get("digital_source_type"):
            facts.extra.setdefault("digital_source_type", act["digital_source_type"])
    facts.add("c2pa", "signature", summary["signature"])


def dwt_dct_bits(image: Any, length: int, *, scale: float = 36.0) -> Any:
    """The ``length`` bits an invisible-watermark ``dwtDct`` encoder hid in an RGB image, read as its decoder
    does: the U channel's Haar LL band in 4 x 4 blocks, each block's largest non-DC value modulo ``scale``
    giving a vote for bit ``block number % length``; a bit is set when most votes say so."""
    import cv2
    import numpy as np

    h, w = image.shape[:2]
    u = cv2.cvtColor(np.ascontiguousarray(image[: h // 4 * 4, : w // 4 * 4, ::-1]), cv2.COLOR_BGR2YUV)[..., 1]
    u = u.astype(np.float64)
    ll = (u[0::2, 0::2] + u[0::2, 1::2] + u[1::2, 0::2] + u[1::2, 1::2]) / 2.0  # pywt.dwt2(u, "haar")[0]
    rows, cols = ll.shape[0] // 4, ll.shape[1] // 4
    blocks = ll[: rows * 4, : cols * 4].reshape(rows, 4, cols, 4).transpose(0, 2, 1, 3).reshape(-1, 16)
    pos = np.argmax(np.abs(blocks[:, 1:]), axis=1) + 1
    votes = (np.abs(blocks[np.arange(blocks.shape[0]), pos]) % scale) > 0.5 * scale
    bit = np.arange(votes.size) % length
    return np.bincount(bit, votes, length) / np.bincount(bit, minlength=length) * 255 > 127


def _watermark(image: Any, facts: _Facts) -> None:
    """The DWT-DCT marks of Stable Diffusion's scripts and SDXL pipelines in an RGB image."""
    import numpy as np

    if min(image.shape[:2]) < 256:  # too few blocks to carry a mark
        return
    for name, (kind, length, expected) in WATERMARKS.items():
        bits = dwt_dct_bits(image, length)
        if kind == "bytes":
            got = np.packbits(bits).tobytes()
            ok, shown = got == expected, got.decode("utf-8", "replace")
        else:
            shown = "".join("1" if b else "0" for b in bits)
            ok = sum(a != b for a, b in zip(shown, str(expected), strict=True)) <= 2
        if ok:
            facts.extra["watermark"] = {"mark": name, "method": "dwtDct", "value": shown}
            facts.add("watermark", f"dwtDct:{name}", shown)
            return


def read_provenance(path: str | os.PathLike[str], *, kind: str | None = None, image: Any = None) -> dict[str, Any]:
    """Everything ``path`` declares about its origin (see the module docstring). ``kind`` is the media kind
    (``image``, ``video``, ``audio``; sniffed when None) and ``image`` its decoded RGB pixels, for the
    watermark (images only)."""
    p = Path(path)
    facts = _Facts()
    png_text: dict[str, str] = {}
    if kind is None:
        from forensics.media.sniff import sniff

        kind = (sniff(p) or ("", ""))[1]
    readers: list[tuple[str, Any]] = [("xmp", lambda: _xmp(p, facts)), ("c2pa", lambda: _c2pa(p, facts))]
    readers.insert(
        0,
        ("image", lambda: _image(p, facts, png_text))
        if kind == "image"
        else ("container", lambda: _container(p, facts)),
    )
    if kind == "image" and image is not None:
        readers.append(("watermark", lambda: _watermark(image, facts)))
    for name, read in readers:
        try:
            read()
        except Exception as exc:  # a reader's failure is noted; the others still run
            facts.errors.append(f"{name}: {type(exc).__name__}: {exc}")
    try:
        facts.date("file_mtime", datetime.fromtimestamp(p.stat().st_mtime, UTC).isoformat(timespec="seconds"))
    except OSError as exc:
        facts.errors.append(f"file time: {exc}")
    software = []
    for e in facts.evidence:
        text = e["value"] if isinstance(e["value"], str) else json.dumps(e["value"], ensure_ascii=False)
        for kind_, name, rx in _SOFTWARE_RE:
            if rx.search(text) and not any(s["name"] == name and s["field"] == e["field"] for s in software):
                software.append({"name": name, "kind": kind_, "source": e["source"], "field": e["field"]})
    out: dict[str, Any] = {"evidence": facts.evidence, "software": software, "dates": facts.dates}
    if png_text:
        out["generation_parameters"] = png_text
    out.update(facts.extra)
    if facts.errors:
        out["errors"] = facts.errors
    return out


def provenance_columns(prov: dict[str, Any] | None) -> dict[str, Any]:
    """The table's provenance columns of a record's ``provenance`` (all ``None`` for older records)."""
    if not prov:
        return dict.fromkeys(PROVENANCE_COLUMNS)
    soft = prov.get("software") or []
    c2 = prov.get("c2pa")
    dates = prov.get("dates") or {}
    return {
        "prov_software": "; ".join(dict.fromkeys(s["name"] for s in soft)) or None,
        "prov_generator": "; ".join(dict.fromkeys(s["name"] for s in soft if s["kind"] == "generator")) or None,
        "prov_digital_source_type": prov.get("digital_source_type"),
        "prov_c2pa": f"{c2.get('claim_generator')} ({c2['signature'].get('state')})" if c2 else None,
        "prov_watermark": (prov.get("watermark") or {}).get("mark"),
        "prov_created": dates.get("creation_time") or dates.get("exif_datetime"),
    }
