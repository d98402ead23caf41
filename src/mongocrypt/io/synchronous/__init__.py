"""mongocrypt's I/O over pymongo, blocking; generated from :mod:`..asynchronous`."""
