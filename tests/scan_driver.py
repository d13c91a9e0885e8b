"""Run ``forensics scan`` with the test-only detectors registered (for kill/resume tests in a subprocess)."""

from __future__ import annotations

import sys

from chaos_detectors import ChaosDetector

from forensics.cli import main
from forensics.detectors import register

if __name__ == "__main__":
    register("tiny_test", ChaosDetector)
    sys.exit(main(sys.argv[1:]))
