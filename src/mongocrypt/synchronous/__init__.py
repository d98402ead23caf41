"""mongocrypt's own API, blocking; generated from :mod:`..asynchronous` by tools/gen_sync.py."""
