"""Local dry runs of a model package in the real serving stack, before any money is spent."""
