"""Benchmarks: hotfolder and its baselines measured side by side (``make bench``).

Not tests: nothing here is collected by pytest (no ``test_`` names); ``run.py`` drives them.
"""
