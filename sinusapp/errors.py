"""User-facing errors.

Every error a user can cause (a bad folder, an unreadable file, an out-of-range clinical value,
a corrupted model bundle, an unwritable output path) is a :class:`SinusAppError`. Its message
says what was wrong, in which input, and what to do about it, so the GUI can show it in a
dialog and the CLI can print it and exit with status 2. Anything else is a bug (exit status 1,
with a log path).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "BundleError",
    "Cancelled",
    "ClinicalInputError",
    "DicomReadError",
    "GeometryError",
    "InputError",
    "InputQualityError",
    "NomogramFileError",
    "NotSinusCTError",
    "OutputError",
    "SeriesSelectionError",
    "SinusAppError",
    "UnsupportedTransferSyntaxError",
]


class SinusAppError(Exception):
    """Base of all errors that are the input's fault, not the program's.

    Parameters
    ----------
    message:
        What was wrong, naming the value that was wrong.
    path:
        The file or folder concerned, when there is one.
    hint:
        What the user can do about it.
    """

    exit_code: int = 2

    def __init__(
        self, message: str, *, path: str | os.PathLike[str] | None = None, hint: str | None = None
    ):
        self.message = message
        self.path = Path(path) if path is not None else None
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        parts = [self.message]
        if self.path is not None:
            parts.append(f"(file: {self.path})")
        text = " ".join(parts)
        if self.hint:
            text += f" — {self.hint}"
        return text


class InputError(SinusAppError):
    """The input given to SinusApp cannot be used as it is."""


class DicomReadError(InputError):
    """A file that should be DICOM could not be read (truncated, not DICOM, missing)."""


class UnsupportedTransferSyntaxError(DicomReadError):
    """The pixel data is compressed with a transfer syntax no installed decoder handles."""


class SeriesSelectionError(InputError):
    """No series (or not the requested one) can be analysed in the given input."""


class GeometryError(InputError):
    """The slices of a series cannot be assembled into one 3D volume."""


class NotSinusCTError(InputError):
    """The CT does not contain the nasal cavity and paranasal sinuses."""


class InputQualityError(InputError):
    """The CT failed the input plausibility gate (:mod:`sinusapp.imaging.plausibility`).

    ``findings`` holds every finding of the gate (the errors that stopped the analysis and
    the warnings found so far), so a caller can show them all.
    """

    def __init__(
        self,
        message: str,
        *,
        findings: tuple[object, ...] = (),
        path: str | os.PathLike[str] | None = None,
        hint: str | None = None,
    ):
        self.findings = tuple(findings)
        super().__init__(message, path=path, hint=hint)


class ClinicalInputError(InputError):
    """A clinical value is missing, malformed or out of its plausible range."""


class BundleError(InputError):
    """A model bundle is missing, corrupted (checksum mismatch) or has an invalid manifest."""


class NomogramFileError(InputError):
    """A nomogram JSON file is missing, malformed or inconsistent."""


class OutputError(InputError):
    """An output file or folder cannot be written."""


class Cancelled(Exception):  # noqa: N818 - the public name the GUI and pipeline rely on
    """Long work (loading, inference, training) stopped because the caller asked it to.

    Not a :class:`SinusAppError`: cancelling is the user's choice, not an input problem.
    """
