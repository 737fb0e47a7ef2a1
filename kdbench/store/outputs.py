"""Derived files (tables, CSVs, plots) written next to each other, each atomically."""

from __future__ import annotations

from pathlib import Path

from kdbench.store.files import atomic_write_bytes


def write_outputs(directory: Path, files: dict[str, bytes]) -> list[Path]:
    """Write ``{name: content}`` into ``directory``; returns the paths in the order given."""
    paths = []
    for name, content in files.items():
        path = Path(directory) / name
        atomic_write_bytes(path, content)
        paths.append(path)
    return paths
