"""Errors that hfr raises on bad input.

Every error says what was wrong (naming the file, row, key, argument or option) and what to
do. The CLI prints the message on one line and exits with status 2 for any `HFRError`.

Which class to raise: library code (anything a Python caller can use without the CLI)
raises `ArgumentError` (or a subclass such as `MetricError`) for an impossible argument
value, `ConfigError` for a config value, and a `DataError` subclass for files and data;
`OptionError` is kept for the command-line front ends (`hfr/cli`, a method's CLI command),
where the message names the `--option`.
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


class GalleryError(DataError):
    """A gallery folder is missing, corrupt or inconsistent, or a search does not fit the gallery."""


class ArgumentError(HFRError):
    """A library function got an impossible argument: an unknown name, a number out of range,
    an array of the wrong shape or type. The command-line counterpart is `OptionError`."""


class MetricError(ArgumentError):
    """Scores, labels or features given to a metric cannot be evaluated (NaN, mismatched
    shapes, no genuine or no impostor pair, an unknown mode)."""


class WriteError(HFRError):
    """A file could not be written (a full disk, a used-up quota, no permission, a read-only
    file system); the message names the file, and the previous version of it is unchanged."""


class OptionError(HFRError):
    """A command-line option has an impossible value (size, count, unknown name)."""


class ExtraMissingError(HFRError):
    """A feature needs an optional extra that is not installed (face detection: `.[detect]`;
    the dlib-resnet recognizer: `.[dlib]`); the message names the pip command that installs it."""
