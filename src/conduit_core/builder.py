"""A Python builder for one resource, for people who prefer code to YAML::

    import conduit_core

    result = (conduit_core.pipeline("orders")
              .source("csv", path="data/orders.csv")
              .transform(rename={"cust_id": "customer_id"})
              .transform(filter="amount > 0")
              .destination("duckdb", path="out/warehouse.duckdb")
              .run())

It builds what an ingest.yml would hold (:meth:`PipelineBuilder.to_dict`, :meth:`PipelineBuilder.to_yaml`) and
validates it with the rules of a file, so a mistake is the same :class:`~conduit_core.errors.ConfigError`,
naming the key (``resources[0].transforms[1].filter``). The run is the same run as ``conduit run``: history,
manifest, checkpoints and ``--resume`` included.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from conduit_core.config.models import IngestConfig
    from conduit_core.engine.results import RunResult


def pipeline(name: str, *, base_dir: str | Path | None = None) -> PipelineBuilder:
    """A builder for the resource ``name``. Relative paths (and the state directory, ``.conduit`` by default)
    are relative to ``base_dir``, the current directory by default."""
    return PipelineBuilder(name, base_dir=base_dir)


class PipelineBuilder:
    """One source, its transform steps and one destination: a resource and what it needs."""

    def __init__(self, name: str, *, base_dir: str | Path | None = None) -> None:
        self.name = name
        self.base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
        self._source: dict[str, Any] | None = None
        self._destination: dict[str, Any] | None = None
        self._lookups: list[dict[str, Any]] = []
        self._transforms: list[dict[str, Any]] = []
        self._options: dict[str, Any] = {}
        self._settings: dict[str, Any] = {}

    def source(self, type_name: str, /, *, name: str | None = None, **options: Any) -> Self:
        """The source: a connector type (``csv``, ``postgresql``, a plugin's) and its options."""
        self._source = {"name": name or f"{self.name}_source", "type": type_name, **options}
        return self

    def lookup(self, name: str, type_name: str, /, **options: Any) -> Self:
        """Another source, for ``join`` steps (``transform(join={"with": name, ...})``)."""
        self._lookups.append({"name": name, "type": type_name, **options})
        return self

    def transform(self, step: Mapping[str, Any] | None = None, /, **keys: Any) -> Self:
        """One step, as in ``transforms:`` (``rename=``, ``filter=``, ``dedupe=``, ``join=``, ``uses=`` with
        ``with_=`` for its options, ``name=``...), or the step's mapping itself."""
        given = dict(step or {})
        if "with_" in keys:
            keys["with"] = keys.pop("with_")
        self._transforms.append({**given, **keys})
        return self

    def destination(self, type_name: str, /, *, name: str | None = None, **options: Any) -> Self:
        """The destination: a connector type (``duckdb``, ``parquet``, ``postgresql``...) and its options."""
        self._destination = {"name": name or f"{self.name}_destination", "type": type_name, **options}
        return self

    def options(self, **resource: Any) -> Self:
        """The resource's own keys: ``mode``, ``table``, ``path``, ``primary_key``, ``schema``,
        ``quality_checks``, ``incremental``..."""
        self._options.update(resource)
        return self

    def settings(self, **settings: Any) -> Self:
        """The file's ``settings:`` (``state_dir``, ``batch_size``, ``checkpoint``)."""
        self._settings.update(settings)
        return self

    def to_dict(self) -> dict[str, Any]:
        """What an ingest.yml for this pipeline would hold."""
        resource: dict[str, Any] = {"name": self.name, **self._options}
        if self._source is not None:
            resource["source"] = self._source["name"]
        if self._destination is not None:
            resource["destination"] = self._destination["name"]
        if self._transforms:
            resource["transforms"] = list(self._transforms)
        data: dict[str, Any] = {
            "sources": [s for s in (self._source, *self._lookups) if s is not None],
            "destinations": [self._destination] if self._destination is not None else [],
            "resources": [resource],
        }
        if self._settings:
            data["settings"] = dict(self._settings)
        return data

    def to_yaml(self) -> str:
        """The pipeline as an ingest.yml, for moving it to a file."""
        import yaml

        return str(yaml.safe_dump(_plain(self.to_dict()), sort_keys=False, default_flow_style=False))

    def config(self) -> IngestConfig:
        """The validated configuration (raises :class:`~conduit_core.errors.ConfigError` with every problem)."""
        from conduit_core.config.loader import config_from_dict

        missing = [what for what, part in (("source", self._source), ("destination", self._destination))
                   if part is None]
        if missing:
            from conduit_core.errors import ConfigError

            msg = f"pipeline {self.name!r} has no {' and no '.join(missing)}"
            raise ConfigError(msg, hint="call .source(type, ...) and .destination(type, ...) before .run()")
        return config_from_dict(self.to_dict(), file=self.base_dir / f"{self.name}.pipeline")

    def run(self, *, resume: bool = False, full_refresh: bool = False, batch_size: int | None = None,
            dry_run: bool = False, skip_preflight: bool = False) -> RunResult:
        """Run it (as ``conduit run`` would) and return the run's result; a failed load is in the result's
        status and errors, not raised."""
        from conduit_core.engine.runner import RunOptions, run

        options = RunOptions(resume=resume, full_refresh=full_refresh, batch_size=batch_size, dry_run=dry_run,
                             skip_preflight=skip_preflight)
        return run(self.config(), options)


def _plain(value: Any) -> Any:
    """``value`` with paths as text (YAML has no path type)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return str(value) if isinstance(value, Path) else value
