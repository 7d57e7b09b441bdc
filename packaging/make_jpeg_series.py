"""Re-encode a CT series as JPEG Lossless (1.2.840.10008.1.2.4.70, decoded by GDCM) or
12-bit JPEG Extended (1.2.840.10008.1.2.4.51, decoded by imagecodecs) for the smoke test.

Runs in the build environment (needs pydicom, its decoders and imagecodecs), not in the app:

    python packaging/make_jpeg_series.py SRC_DIR OUT_DIR {lossless,ext12}
"""

import shutil
import sys
from pathlib import Path

import imagecodecs
import numpy as np
import pydicom
from pydicom.encaps import encapsulate
from pydicom.uid import UID

SYNTAX = {"lossless": UID("1.2.840.10008.1.2.4.70"), "ext12": UID("1.2.840.10008.1.2.4.51")}


def main(src: Path, out: Path, mode: str) -> None:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for f in sorted(src.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        a = ds.pixel_array.astype(np.int32)
        slope = float(getattr(ds, "RescaleSlope", 1))
        if ds.PixelRepresentation == 1:  # signed → unsigned 12-bit, intercept compensates
            a = a + 1024
            ds.RescaleIntercept = float(getattr(ds, "RescaleIntercept", 0)) - 1024 * slope
        u = np.clip(a, 0, 4095).astype(np.uint16)
        if mode == "lossless":
            frame = imagecodecs.jpeg8_encode(u, lossless=True, bitspersample=12, predictor=1)
        else:
            frame = imagecodecs.jpeg8_encode(u, level=95, bitspersample=12)
        ds.PixelRepresentation, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 0, 16, 12, 11
        ds.PixelData = encapsulate([frame])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = SYNTAX[mode]
        ds.save_as(out / f.name, enforce_file_format=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
