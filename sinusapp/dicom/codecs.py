"""Pixel-data decoders: which compressed transfer syntaxes SinusApp can read, and how.

pydicom decodes through plugins. SinusApp relies only on permissively licensed ones:
pylibjpeg-openjpeg (JPEG 2000), pylibjpeg-rle / pydicom's own RLE, pyjpegls (JPEG-LS),
python-gdcm (JPEG baseline and lossless) and — registered here — imagecodecs for 12-bit JPEG
Extended (1.2.840.10008.1.2.4.51), which GDCM refuses. The GPL-3 pylibjpeg-libjpeg is never
required. The retired JPEG processes (spectral selection 4.53, full progression 4.55, ...)
have no maintained decoder: they raise :class:`UnsupportedTransferSyntaxError` naming the
transfer syntax.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from pydicom import uid

log = logging.getLogger(__name__)

__all__ = [
    "IMAGECODECS_PLUGIN",
    "JPEG_EXTENDED_12BIT",
    "describe_transfer_syntax",
    "imagecodecs_available",
    "register_plugins",
]

IMAGECODECS_PLUGIN = "sinusapp-imagecodecs"
JPEG_EXTENDED_12BIT = str(uid.JPEGExtended12Bit)

_lock = threading.Lock()
_registered = False

# Module attributes required by pydicom's plugin interface (see pydicom's decoder plugin guide).
DECODER_DEPENDENCIES = {uid.JPEGExtended12Bit: ("imagecodecs>=2024.1",)}


def imagecodecs_available() -> bool:
    """Is imagecodecs (libjpeg-turbo with 12-bit support) importable here?"""
    try:
        import imagecodecs  # noqa: F401
    except ImportError:
        return False
    return True


def is_available(tsyntax: str) -> bool:
    """pydicom plugin hook: can this plugin decode ``tsyntax`` here?"""
    return tsyntax in DECODER_DEPENDENCIES and imagecodecs_available()


def _decode_frame(src: bytes, runner: object) -> bytearray:
    """pydicom plugin hook: decode one JPEG Extended frame with libjpeg-turbo (imagecodecs)."""
    import imagecodecs

    arr = imagecodecs.jpeg8_decode(src)
    bits_allocated = getattr(runner, "bits_allocated", 16)
    dtype = "<u2" if bits_allocated > 8 else "u1"
    return bytearray(arr.astype(dtype, copy=False).tobytes())


def register_plugins() -> None:
    """Register SinusApp's extra decoder plugin with pydicom (idempotent, thread-safe)."""
    global _registered
    with _lock:
        if _registered:
            return
        from pydicom.pixels.decoders import JPEGExtended12BitDecoder

        # ValueError: already registered by an earlier import in this process
        with contextlib.suppress(ValueError):
            JPEGExtended12BitDecoder.add_plugin(
                IMAGECODECS_PLUGIN, ("sinusapp.dicom.codecs", "_decode_frame")
            )
        _registered = True


def describe_transfer_syntax(tsyntax: str) -> str:
    """Human name and UID of a transfer syntax, e.g. ``'JPEG Baseline (Process 1) (1.2...)'``."""
    try:
        name = uid.UID(tsyntax).name
    except (ValueError, KeyError):
        name = "unknown transfer syntax"
    return f"{name} ({tsyntax})"
