"""Quality checks over Arrow batches, the dead-letter queue, and custom validators."""

from conduit_core.quality.registry import QualityCheckRegistry, validator

__all__ = ["QualityCheckRegistry", "validator"]
