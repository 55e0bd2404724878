"""Shoal's host side: build, flash, test and operate boards and fleets.

Everything the `shoal` command does is a public function here that scripts can call directly.
"""
