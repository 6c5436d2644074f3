"""Path options in ingest.yml are relative to the directory of the file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationInfo


def _resolve(value: Path, info: ValidationInfo) -> Path:
    context: Any = info.context
    base = context.get("base_dir") if isinstance(context, dict) else None
    value = value.expanduser()
    if base is not None and not value.is_absolute():
        return Path(base) / value
    return value


#: A filesystem path (or glob) resolved against the config file's directory.
ConfigPath = Annotated[Path, AfterValidator(_resolve)]
