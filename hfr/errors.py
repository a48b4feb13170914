"""Errors that hfr raises on bad input.

Every error says what was wrong (naming the file, row, key or option) and what to do.
The CLI prints the message on one line and exits with status 2.
"""

from __future__ import annotations


class HFRError(Exception):
    """Base class of every error hfr raises on purpose; the CLI turns it into exit status 2."""


class ConfigError(HFRError):
    """A config file, key or `--set` override is invalid."""


class DataError(HFRError):
    """A dataset, manifest, image or protocol file is invalid or missing."""


class ManifestError(DataError):
    """A manifest is malformed: bad header, bad row, duplicate path, missing file."""


class ImageError(DataError):
    """An image cannot be read, decoded or has the wrong size."""


class FormatError(DataError):
    """A real dataset's files do not follow the format an adapter expects."""


class OptionError(HFRError):
    """A command-line option has an impossible value (size, count, unknown name)."""
