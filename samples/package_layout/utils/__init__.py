"""Helpers of the package-layout sample project."""
