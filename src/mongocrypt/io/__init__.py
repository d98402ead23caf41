"""Layer 3: implementations of the engine's I/O callback."""
