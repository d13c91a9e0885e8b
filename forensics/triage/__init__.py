"""Campaign triage: near-duplicate clusters over perceptual fingerprints, and what files declare about
their origin (provenance), both recorded by the scan beside the detectors' scores.

:mod:`forensics.triage.fingerprint` hashes frames and audio in the scan's decoding pass;
:mod:`forensics.triage.cluster` groups a results file's files (``forensics cluster results.jsonl``);
:mod:`forensics.triage.provenance` reads C2PA manifests, container tags, EXIF/XMP/IPTC, PNG text and
invisible watermarks, as evidence, never as a score.
"""
