"""The rewriter's output: one standalone query and the picture that travels with it. No torch."""

from __future__ import annotations

from typing import NamedTuple


class RewrittenQuery(NamedTuple):
    """text: the standalone query; image_item_id: the catalogue item whose picture is in force,
    or None; image: uploaded picture bytes (PNG/JPEG) in force instead, or None."""

    text: str
    image_item_id: int | None = None
    image: bytes | None = None

    @property
    def has_picture(self) -> bool:
        return self.image_item_id is not None or self.image is not None
