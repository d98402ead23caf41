"""The engine's blocking drivers, generated from :mod:`..asynchronous` by tools/gen_sync.py."""
