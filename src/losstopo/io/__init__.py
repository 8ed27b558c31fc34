"""Reading and writing losstopo files: fields, evaluation stores and their topology (HDF5).

The layout is documented in ``docs/format.md``; :mod:`losstopo.io.hdf5` holds the functions.
"""

from .hdf5 import (
    FORMAT_NAME,
    FORMAT_VERSION,
    PartialRun,
    open_field_file,
    read_field,
    read_fingerprint,
    read_partial,
    read_progress,
    store_topology,
    write_atomically,
    write_field,
    write_field_contents,
    write_store,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "PartialRun",
    "open_field_file",
    "read_field",
    "read_fingerprint",
    "read_partial",
    "read_progress",
    "store_topology",
    "write_atomically",
    "write_field",
    "write_field_contents",
    "write_store",
]
