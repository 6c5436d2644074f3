"""conduit: declarative, Arrow-native, plugin-based data ingestion.

The public API is loaded lazily so that ``import conduit_core`` (and the CLI's
``--help``) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "BaseDestination",
    "BaseSource",
    "Batch",
    "Capabilities",
    "ConduitError",
    "ConfigError",
    "PipelineBuilder",
    "ReadRequest",
    "RunOptions",
    "WriteMode",
    "WriteTarget",
    "__version__",
    "load_config",
    "pandas_step",
    "pipeline",
    "run",
]

_LAZY = {
    "BaseDestination": "conduit_core.connectors.base",
    "BaseSource": "conduit_core.connectors.base",
    "Capabilities": "conduit_core.connectors.base",
    "ReadRequest": "conduit_core.connectors.base",
    "WriteMode": "conduit_core.connectors.base",
    "WriteTarget": "conduit_core.connectors.base",
    "Batch": "conduit_core.batch",
    "ConduitError": "conduit_core.errors",
    "ConfigError": "conduit_core.errors",
    "load_config": "conduit_core.config.loader",
    "run": "conduit_core.engine.runner",
    "RunOptions": "conduit_core.engine.runner",
    "pipeline": "conduit_core.builder",
    "PipelineBuilder": "conduit_core.builder",
    "pandas_step": "conduit_core.stages.transforms",
}

if TYPE_CHECKING:
    from conduit_core.batch import Batch
    from conduit_core.builder import PipelineBuilder, pipeline
    from conduit_core.config.loader import load_config
    from conduit_core.connectors.base import (
        BaseDestination,
        BaseSource,
        Capabilities,
        ReadRequest,
        WriteMode,
        WriteTarget,
    )
    from conduit_core.engine.runner import RunOptions, run
    from conduit_core.errors import ConduitError, ConfigError
    from conduit_core.stages.transforms import pandas_step


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'conduit_core' has no attribute {name!r}"
        raise AttributeError(msg)
    import importlib

    return getattr(importlib.import_module(module), name)
