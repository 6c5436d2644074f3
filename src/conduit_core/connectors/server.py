"""Connection options shared by server connectors: a DSN, or host/port/database/user/password."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, model_validator

from conduit_core.connectors.base import ConnectorOptions


class ServerOptions(ConnectorOptions):
    default_port: ClassVar[int] = 0

    dsn: SecretStr | None = Field(default=None, description="scheme://user:password@host:port/database")
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    database: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    connect_timeout: int = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _dsn_or_host(self) -> ServerOptions:
        if self.dsn is None and self.host is None:
            msg = "set `dsn:` or `host:` (with database, user and password)"
            raise ValueError(msg)
        if self.dsn is not None:
            extra = [k for k in ("host", "port", "database", "user", "password") if getattr(self, k) is not None]
            if extra:
                msg = f"`dsn:` already says where to connect; remove {', '.join(extra)} (or drop `dsn:`)"
                raise ValueError(msg)
        return self

    def secrets(self) -> list[str]:
        """Values to mask in any message."""
        values = [s.get_secret_value() for s in (self.password, self.dsn) if s is not None]
        if self.dsn is not None:
            password = urlsplit(self.dsn.get_secret_value()).password
            if password:
                values.append(unquote(password))
        return values

    def parts(self) -> dict[str, str | int | None]:
        """host, port, database, user, password, from the DSN or the separate keys."""
        if self.dsn is not None:
            url = urlsplit(self.dsn.get_secret_value())
            return {"host": url.hostname, "port": url.port or self.default_port,
                    "database": unquote(url.path.lstrip("/")) or None,
                    "user": unquote(url.username) if url.username else None,
                    "password": unquote(url.password) if url.password else None}
        return {"host": self.host, "port": self.port or self.default_port, "database": self.database,
                "user": self.user, "password": self.password.get_secret_value() if self.password else None}
