"""mongocrypt's own API with asyncio (the sources of the generated :mod:`..synchronous`)."""
