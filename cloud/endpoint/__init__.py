"""Calling a deployed endpoint (or our own server through the same contract)."""
