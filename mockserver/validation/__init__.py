"""Request validation against the contract: schema, unknown fields, named rules, images."""

from __future__ import annotations

from mockserver.validation.images import ImageInfo, ImageProblem, inspect_image
from mockserver.validation.request import (
    Accepted,
    Violation,
    format_param,
    parse_json_body,
    validate_create,
    validate_query,
)

__all__ = [
    "Accepted",
    "ImageInfo",
    "ImageProblem",
    "Violation",
    "format_param",
    "inspect_image",
    "parse_json_body",
    "validate_create",
    "validate_query",
]
