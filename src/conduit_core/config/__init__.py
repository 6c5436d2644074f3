"""ingest.yml: models and loader."""

from conduit_core.config.loader import load_config
from conduit_core.config.models import ConnectorEntry, IngestConfig, ResourceConfig, Settings

__all__ = ["ConnectorEntry", "IngestConfig", "ResourceConfig", "Settings", "load_config"]
