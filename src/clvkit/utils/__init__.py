"""Shared infrastructure: safe output files, compiled-code cache, usable cores, exact sums.

Nothing here knows about customers or models; every layer may import it.
"""
