"""Writing a small state file so that a crash or a full disk leaves the old one or the new one,
never half of either: a temporary file beside it, then a rename."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any


def write_json(path: Path, data: Any, *, durable: bool = True, **dump_args: Any) -> None:
    """`data` as JSON into `path` (through `.<name>.tmp`); fsynced before the rename when
    `durable`. OSError as the write raised it, with the temporary file removed."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, **dump_args)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
