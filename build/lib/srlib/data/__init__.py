"""Data for srlib: the benchmarks' folders, the bundled real-photo default, one-class digits.

- :func:`folder_dataset` reads one split of an MVTec AD, MPDD or BTAD category
  (or anything in their layouts), decoded once into memory.
- :func:`make_textures` writes :data:`TEXTURE_CATEGORIES`, crops of real
  photographs with synthetic defects, in the MVTec AD layout.
- :func:`one_class_digits` builds the one-class digits task.
- :func:`check_folder` validates a dataset folder (``srlib data check``).

Names are imported on first use, so ``srlib --help`` does not load torch.
"""

import importlib

_HOMES = {
    "folder_dataset": "folder",
    "FolderDataset": "folder",
    "good_training_images": "folder",
    "make_textures": "textures",
    "TEXTURE_CATEGORIES": "textures",
    "one_class_digits": "digits",
    "check_folder": "check",
    "LAYOUTS": "layouts",
}
__all__ = list(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"srlib.data.{_HOMES[name]}"), name)


def __dir__():
    return sorted(__all__)
