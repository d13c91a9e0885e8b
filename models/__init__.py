"""Shipped weights: ``<detector>.<tag>.safetensors`` plus a ``.json`` card each (installed as ``forensics.models``)."""
