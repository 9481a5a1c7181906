"""The comparison's records: one JSON object per finished cell, one per line.

A record is appended only when its cell has finished, in one ``write`` of a
whole line followed by ``fsync``; a run killed mid-write leaves at most one
partial last line, which :func:`read_records` skips (and the next append
starts on a fresh line), so a resumed grid reruns exactly the cells without a
complete record.  Nothing already written is ever rewritten.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import FormatError

RECORDS_FILE = "records.jsonl"


def append_record(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append ``record`` as one line of JSON to ``path`` (created with its folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True, allow_nan=True)
    with open(path, "ab+") as f:
        f.seek(0, os.SEEK_END)
        prefix = b""
        if f.tell() > 0:  # a partial last line (a killed write) gets its own line
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                prefix = b"\n"
        f.write(prefix + line.encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())


def iter_records(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The complete records of ``path`` in order; a line cut by a killed write is skipped.

    A cut line is the start of a JSON object that does not parse.  Any other
    line that is not a JSON object raises :class:`~sciml_seq.errors.FormatError`:
    that is a damaged or foreign file, not a killed write.
    """
    path = Path(path)
    if not path.exists():
        return
    for number, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if line.startswith(b"{"):
                continue  # the partial line of a killed write
            record = None
        if not isinstance(record, dict):
            raise FormatError(
                f"{path}: line {number} is not a JSON record; expected one JSON object per line"
            )
        yield record


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete record of ``path`` (an empty list when it does not exist)."""
    return list(iter_records(path))


def finished_keys(path: str | os.PathLike[str]) -> set[str]:
    """The ``key`` of every complete record: cells a resumed grid skips."""
    return {r["key"] for r in iter_records(path) if "key" in r}
