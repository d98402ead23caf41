"""What pymongo's encryption needs from an engine, as the ``pymongocrypt`` facade re-exports it.

:mod:`.asynchronous` (and its generated twin :mod:`.synchronous`) hold the encrypters pymongo
builds with its own I/O object and the callback contract that object implements; the encrypters
route pymongo's I/O through mongocrypt's (KMS transport, credentials, events, analyzer).
:mod:`._identity` makes ``importlib.metadata`` report the ``pymongocrypt`` API level.
"""
