"""The canvas's view transform: screen = image * scale + offset (Qt-free arithmetic)."""

from __future__ import annotations

from dataclasses import dataclass

MIN_SCALE = 0.005
MAX_SCALE = 40.0
ZOOM_STEP = 1.25


@dataclass
class ViewTransform:
    """Screen pixels per image pixel (``scale``) and the screen position of the image origin."""

    scale: float = 1.0
    ox: float = 0.0
    oy: float = 0.0

    def to_image(self, sx: float, sy: float) -> tuple[float, float]:
        return (sx - self.ox) / self.scale, (sy - self.oy) / self.scale

    def to_screen(self, x: float, y: float) -> tuple[float, float]:
        return x * self.scale + self.ox, y * self.scale + self.oy

    def visible_rect(self, view_w: int, view_h: int) -> tuple[float, float, float, float]:
        """The image-pixel rectangle (xyxy) the view shows, not clipped to the image."""
        x0, y0 = self.to_image(0, 0)
        x1, y1 = self.to_image(view_w, view_h)
        return x0, y0, x1, y1

    def fit(self, *, image_w: int, image_h: int, view_w: int, view_h: int, margin: float = 0.98) -> None:
        """Show the whole image centred."""
        if image_w <= 0 or image_h <= 0 or view_w <= 0 or view_h <= 0:
            return
        self.scale = clamp_scale(min(view_w / image_w, view_h / image_h) * margin)
        self.ox = (view_w - image_w * self.scale) / 2
        self.oy = (view_h - image_h * self.scale) / 2

    def zoom_to(self, scale: float, *, anchor: tuple[float, float]) -> None:
        """Set ``scale`` keeping the image point under screen point ``anchor`` where it is."""
        ix, iy = self.to_image(*anchor)
        self.scale = clamp_scale(scale)
        self.ox = anchor[0] - ix * self.scale
        self.oy = anchor[1] - iy * self.scale

    def pan(self, dx: float, dy: float) -> None:
        self.ox += dx
        self.oy += dy

    def keep_visible(self, *, image_w: int, image_h: int, view_w: int, view_h: int) -> None:
        """Never pan the image entirely out of view (a quarter of the view stays covered)."""
        w, h = image_w * self.scale, image_h * self.scale
        min_x, max_x = view_w * 0.25 - w, view_w * 0.75
        min_y, max_y = view_h * 0.25 - h, view_h * 0.75
        self.ox = min(max(self.ox, min_x), max_x)
        self.oy = min(max(self.oy, min_y), max_y)


def clamp_scale(scale: float) -> float:
    return min(max(scale, MIN_SCALE), MAX_SCALE)
