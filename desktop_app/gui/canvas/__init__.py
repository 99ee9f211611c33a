"""The image canvas: display pyramid, overlay tiles, tools. Draws; never runs a model."""

from desktop_app.gui.canvas.image_canvas import CandidateOverlay, CanvasActions, ImageCanvas
from desktop_app.gui.canvas.loading import DecodedImage, DecodedImageCache, ImageLoader, LoadedImage
from desktop_app.gui.canvas.tools import Tool

__all__ = ["CandidateOverlay", "CanvasActions", "DecodedImage", "DecodedImageCache", "ImageCanvas",
           "ImageLoader", "LoadedImage", "Tool"]
