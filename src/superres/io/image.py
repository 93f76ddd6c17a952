"""Image files <-> the in-memory contract: float32 RGB ``(3, H, W)`` tensors in [0, 1].

uint8/uint16 arrays, BGR channel order and HWC layout exist only inside :mod:`superres.io`;
everything it returns or accepts is a float tensor, channel first, RGB, in [0, 1].

Reading uses Pillow for every format and mode it decodes faithfully (1, L, LA, P, RGB, RGBA, CMYK,
YCbCr, I;16, I) and OpenCV for 16-bit colour PNG/TIFF, which Pillow decodes only as 8-bit. Integer
values map to floats exactly: ``v / 255`` for 8-bit sources, ``v / 65535`` for 16-bit ones, so
:func:`to_uint8` (and writing at the source's depth) gives back the very same integers.

Writing picks the format from the extension, clamps and rounds half-up exactly once, and replaces
the target atomically: a reader sees the old file or the complete new one, never a partial file.

Reading lives in :mod:`superres.io.image_read` (what is wrong with a file that is not a readable
image, in :mod:`superres.io.image_checks`), writing in :mod:`superres.io.image_write`; this module
is where both are imported from.
"""

from __future__ import annotations

from superres.io.image_checks import check_image_file as check_image_file
from superres.io.image_metadata import ImageMetadata as ImageMetadata
from superres.io.image_metadata import read_text_record as read_text_record
from superres.io.image_read import DEFAULT_MAX_PIXELS as DEFAULT_MAX_PIXELS
from superres.io.image_read import ImageData as ImageData
from superres.io.image_read import frame_count as frame_count
from superres.io.image_read import read_image as read_image
from superres.io.image_write import SUPPORTED_EXTENSIONS as SUPPORTED_EXTENSIONS
from superres.io.image_write import quantize_image as quantize_image
from superres.io.image_write import to_uint8 as to_uint8
from superres.io.image_write import write_array as write_array
from superres.io.image_write import write_image as write_image
