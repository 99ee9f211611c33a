"""Benchmarks (not tests): ``python -m bench [models|app|server ...]``."""
