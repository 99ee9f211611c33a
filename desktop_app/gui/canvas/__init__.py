"""The image canvas: display pyramid, overlay tiles, tools. Draws; never runs a model."""

from desktop_app.gui.canvas.image_canvas import CandidateOverlay, CanvasActions, ImageCanvas
from desktop_app.gui.canvas.loading import ImageLoader, LoadedImage
from desktop_app.gui.canvas.tools import Tool

__all__ = ["CandidateOverlay", "CanvasActions", "ImageCanvas", "ImageLoader", "LoadedImage", "Tool"]
