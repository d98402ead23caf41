"""mongocrypt's I/O over pymongo, asyncio (the sources of the generated :mod:`..synchronous`)."""
