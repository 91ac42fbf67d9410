"""Where the shared image corpus lives: real photos and known-bad files, read in place."""

from __future__ import annotations

from pathlib import Path

#: ``<repo>/../shared/corpus``: never copied into the repository.
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
PHOTOS = CORPUS / "photos"
BAD = CORPUS / "bad"
