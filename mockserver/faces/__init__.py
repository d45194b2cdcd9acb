"""Faces: the wire dialects of one engine. A face owns paths, auth, envelope, status spelling,
id format and error rendering; the engine owns none of that (see ``base.py``)."""

from __future__ import annotations

from mockserver.faces.base import (
    DEFAULT_CALLBACK_HOSTS,
    Face,
    FaceSettings,
    Handled,
    Handler,
    Mount,
    Refused,
    face_names,
    make_face,
    register_face,
)

__all__ = [
    "DEFAULT_CALLBACK_HOSTS",
    "Face",
    "FaceSettings",
    "Handled",
    "Handler",
    "Mount",
    "Refused",
    "face_names",
    "make_face",
    "register_face",
]
