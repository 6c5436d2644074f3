"""Keep pandas out of a `conduit` process until something in it imports pandas.

pyarrow imports pandas, when it is installed, the first time it converts Python or NumPy values
(``pa.array``, ``pa.scalar``, ``Array.to_numpy``): it looks for pandas objects among the values. That is
0.1-0.2 s of a run's start-up spent on a library no built-in connector or step uses. :func:`defer_pandas`
makes pyarrow's first look find no pandas, and re-arms pyarrow's pandas support the moment anything
(a pandas step, a user's Python step, a plugin) imports pandas, so code that uses pandas behaves
exactly as without the deferral.

Only the CLI calls it: the process is conduit's own. A program that embeds conduit keeps pyarrow's
default behaviour.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType


class _Blocked(importlib.abc.MetaPathFinder):
    """Makes ``import pandas`` fail, while pyarrow takes its first look."""

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is deferred")
        return None


class _Rearm(importlib.abc.MetaPathFinder):
    """Once pandas has been imported, tells pyarrow to look for it again (and stands aside)."""

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if name != "pandas":
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _RearmingLoader(spec.loader)
                return spec
        return None


class _RearmingLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _pyarrow_looks_again()

    def __getattr__(self, name: str) -> object:  # get_resource_reader, is_package, ... of the real loader
        return getattr(self._loader, name)


def _pyarrow_looks_again() -> None:
    import pyarrow.lib

    # Asking for the module makes pyarrow try the import again, which now succeeds.
    pyarrow.lib._pandas_api.pd  # noqa: B018


def defer_pandas() -> None:
    """Let pyarrow start without pandas; a later ``import pandas`` anywhere restores pyarrow's support."""
    if "pandas" in sys.modules or any(isinstance(finder, _Rearm) for finder in sys.meta_path):
        return  # pyarrow has pandas already, or the deferral is in place
    import numpy as np
    import pyarrow as pa

    blocked = _Blocked()
    sys.meta_path.insert(0, blocked)
    try:
        # The two first looks: the Python shim (pa.array, pa.scalar) and the C++ one (to_numpy).
        np.asarray(pa.array(np.zeros(1)))
    finally:
        sys.meta_path.remove(blocked)
    for name in [n for n in sys.modules if n == "pandas" or n.startswith("pandas.")]:
        del sys.modules[name]  # a partial import the block interrupted
    sys.meta_path.insert(0, _Rearm())

