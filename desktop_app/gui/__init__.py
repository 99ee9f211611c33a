"""The Qt GUI: window, widgets, dialogs, canvas and the bridge to the inference worker.

It reads and edits the core's documents (``desktop_app.core``) and never runs a model itself.
"""
