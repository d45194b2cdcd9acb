"""Constants and payload builders for the mockserver tests."""

from __future__ import annotations

from sample_payloads import b64, i2v, image_bytes, png_claiming, t2v

AUTH = (("authorization", "Bearer sk-test"),)
CREATE = "/v1/video/generations"

__all__ = ["AUTH", "CREATE", "b64", "i2v", "image_bytes", "png_claiming", "t2v"]
