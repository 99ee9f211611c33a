"""Small Qt widgets the main window assembles; none of them knows about the others."""
