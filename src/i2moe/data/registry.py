"""Registry of named datasets: a loader function per name, registered with a decorator.

Loaders are plain functions ``(**options) -> DataBundle``::

    @register_dataset("mfeat", description="...", citation="...", licence="CC BY 4.0")
    def load_mfeat(seed: int = 0) -> DataBundle: ...

    bundle = load_dataset("mfeat", seed=1)

The datasets shipped with the package (:mod:`i2moe.data.bundled`) are registered the first time
the registry is queried, so importing this module stays cheap and free of import cycles.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from i2moe.data.base import DataBundle, DataError

Loader = Callable[..., DataBundle]

# Modules whose import registers datasets; imported lazily on the first query.
_BUILTIN_MODULES: tuple[str, ...] = ("i2moe.data.bundled",)
_builtins_loaded = False


@dataclass(frozen=True)
class DatasetEntry:
    """What the registry knows about one dataset without loading it.

    Attributes:
        name: registry key, as passed to :func:`load_dataset`.
        loader: function ``(**options) -> DataBundle``.
        description: one line for listings.
        citation: the reference to cite when using the data.
        licence: the data's licence (e.g. ``"CC BY 4.0"``).
        task: ``"classification"``, ``"multilabel"`` or ``"regression"``, when declared.
        num_samples: total number of samples over all splits, when declared.
        modalities: one ``"name (shape)"`` string per modality, in the bundle's order.
    """

    name: str
    loader: Loader
    description: str
    citation: str
    licence: str
    task: str | None = None
    num_samples: int | None = None
    modalities: tuple[str, ...] = ()

    @property
    def options(self) -> dict[str, Any]:
        """The loader's keyword options with their defaults (``inspect.Parameter.empty`` if
        required)."""
        return {
            p.name: p.default
            for p in inspect.signature(self.loader).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }


#: Every registered dataset by name. Query it through the functions below so the bundled
#: datasets are registered first.
DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(
    name: str,
    *,
    description: str,
    citation: str,
    licence: str,
    task: str | None = None,
    num_samples: int | None = None,
    modalities: tuple[str, ...] = (),
) -> Callable[[Loader], Loader]:
    """Decorator that registers a loader under ``name`` and returns it unchanged.

    Args:
        name: registry key; lower case without spaces by convention.
        description: one line for listings.
        citation: the reference to cite when using the data.
        licence: the data's licence.
        task: the bundle's task, for listings that must not load the data.
        num_samples: total samples over all splits, for listings.
        modalities: one ``"name (shape)"`` string per modality, for listings.

    Returns:
        The decorator.

    Raises:
        ValueError: another loader is already registered under ``name``.
    """

    def decorator(loader: Loader) -> Loader:
        existing = DATASETS.get(name)
        # Re-registering the same function (a module reloaded) is harmless; a different
        # function under a taken name is a programming mistake that would silently shadow data.
        if existing is not None and _qualified_name(existing.loader) != _qualified_name(loader):
            raise ValueError(
                f"dataset name '{name}' is already registered by {_qualified_name(existing.loader)}"
            )
        DATASETS[name] = DatasetEntry(
            name=name,
            loader=loader,
            description=description,
            citation=citation,
            licence=licence,
            task=task,
            num_samples=num_samples,
            modalities=tuple(modalities),
        )
        return loader

    return decorator


def get_dataset_entry(name: str) -> DatasetEntry:
    """The registry entry for ``name``.

    Raises:
        DataError: no dataset is registered under ``name``; the message lists the valid names.
    """
    _load_builtins()
    if name not in DATASETS:
        raise DataError(
            f"dataset: unknown name '{name}'; expected one of {', '.join(sorted(DATASETS))}"
        )
    return DATASETS[name]


def load_dataset(name: str, **options: Any) -> DataBundle:
    """Load a registered dataset.

    Args:
        name: registry key, e.g. ``"mfeat"``.
        **options: keyword options of that dataset's loader, e.g. ``seed=1``.

    Returns:
        The dataset's bundle.

    Raises:
        DataError: unknown name, or an option the loader does not accept.
    """
    entry = get_dataset_entry(name)
    try:
        inspect.signature(entry.loader).bind(**options)
    except TypeError:
        accepted = ", ".join(entry.options) or "none"
        unknown = ", ".join(sorted(set(options) - set(entry.options))) or "?"
        raise DataError(
            f"dataset '{name}': unknown option(s) {unknown}; accepted options: {accepted}"
        ) from None
    return entry.loader(**options)


def list_datasets() -> list[DatasetEntry]:
    """All registered datasets, sorted by name."""
    _load_builtins()
    return [DATASETS[name] for name in sorted(DATASETS)]


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)
        _builtins_loaded = True


def _qualified_name(loader: Loader) -> str:
    return f"{getattr(loader, '__module__', '?')}.{getattr(loader, '__qualname__', repr(loader))}"
