"""The package version: one place, read by the build and checked against the extension at import."""

__version__ = "0.1.0"
