"""Faces: the wire dialects of one engine. A face owns paths, auth, envelope, status spelling,
id format and error rendering; the engine owns none of that."""

from __future__ import annotations

from mockserver.faces.gateway import GatewayFace, Handled

__all__ = ["GatewayFace", "Handled"]
