"""The engine's asyncio drivers (the sources of the generated :mod:`..synchronous` twins)."""
