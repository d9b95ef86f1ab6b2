"""Images sent with a campaign: what a file really is, by its content, and how big it may be.

A file's name says nothing (a text file called `.png`, an SVG, a PDF): the first bytes do.
WhatsApp shows JPEG and PNG as photos (WebP is its sticker format, GIF is turned into a
video by the app, never by the API); those two are what a campaign may carry. The bytes are
checked and stored with the campaign when it is created, so every later send, on any host,
sends exactly what was checked.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from waha_tui.errors import UserError, ref

# WhatsApp's own limit for a photo is 5 MB (larger ones go out as documents); base64 makes
# the request a third larger again, which proxies in front of WAHA see.
DEFAULT_MAX_IMAGE_MB = 5.0
MAX_IMAGE_ENV = "WAHA_TUI_MAX_IMAGE_MB"

SENDABLE = {"image/jpeg": ".jpg", "image/png": ".png"}

# (prefix, what it is, its MIME type): the first match wins.
_SIGNATURES: list[tuple[bytes, str, str]] = [
    (b"\xff\xd8\xff", "a JPEG image", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image", "image/png"),
    (b"GIF87a", "a GIF image", "image/gif"),
    (b"GIF89a", "a GIF image", "image/gif"),
    (b"%PDF-", "a PDF document", "application/pdf"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)", "application/zip"),
    (b"BM", "a BMP image", "image/bmp"),
    (b"II*\x00", "a TIFF image", "image/tiff"),
    (b"MM\x00*", "a TIFF image", "image/tiff"),
    (b"\x00\x00\x01\x00", "an icon (ICO)", "image/x-icon"),
]


class MediaError(UserError):
    """A file that cannot be sent as a campaign's image; the message names the file."""


@dataclass(frozen=True)
class Media:
    """An image's bytes as checked, with what WAHA's sendImage needs."""

    data: bytes = field(repr=False)
    mimetype: str
    filename: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")


def sniff(head: bytes) -> tuple[str, str | None]:
    """What the bytes are (for a message) and their MIME type if known."""
    for prefix, what, mime in _SIGNATURES:
        if head.startswith(prefix):
            return what, mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image (WhatsApp's sticker format)", "image/webp"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "a HEIC/AVIF image", "image/heic"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "an SVG drawing (XML text)", "image/svg+xml"
    if text.startswith((b"<!doctype html", b"<html")):
        return "an HTML page", "text/html"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "not an image format waha-tui knows", None
    return "a text file", "text/plain"


def max_image_bytes() -> int:
    """The size limit: WAHA_TUI_MAX_IMAGE_MB, default DEFAULT_MAX_IMAGE_MB."""
    raw = os.environ.get(MAX_IMAGE_ENV, "").strip()
    if not raw:
        return int(DEFAULT_MAX_IMAGE_MB * 1024 * 1024)
    try:
        mb = float(raw)
    except ValueError:
        raise UserError(f"{MAX_IMAGE_ENV}={raw!r} is not a number of megabytes") from None
    if not 0 < mb <= 100:
        raise UserError(f"{MAX_IMAGE_ENV}={raw!r} must be more than 0 and at most 100")
    return round(mb * 1024 * 1024)


def load_image(path_text: str, *, limit: int | None = None, given_as: str | None = None) -> Media:
    """The image at `path_text`, checked by its content and size; raises MediaError naming
    it as `given_as` (by default the image field: --image, or a form's Image) and the path."""
    given_as = ref("image") if given_as is None else given_as
    limit = max_image_bytes() if limit is None else limit
    path = Path(path_text).expanduser()
    where = f"{given_as} {path_text}"
    try:
        with path.open("rb") as f:
            # One byte over the limit is enough to refuse: never read a huge file whole.
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise MediaError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise MediaError(f"{where}: is a directory, not an image") from None
    except OSError as exc:
        raise MediaError(f"{where}: cannot be read ({exc.strerror})") from None
    if not data:
        raise MediaError(f"{where}: the file is empty")
    if len(data) > limit:
        raise MediaError(
            f"{where}: larger than the {limit / (1024 * 1024):.3g} MB limit ({MAX_IMAGE_ENV}); "
            "WhatsApp sends larger photos as documents"
        )
    what, mime = sniff(data[:512])
    if mime not in SENDABLE:
        raise MediaError(f"{where}: is {what}, not a JPEG or PNG image")
    return Media(data, mime, path.name)
