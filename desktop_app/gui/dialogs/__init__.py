"""The app's dialogs: export, batch, models, keyboard shortcuts."""
