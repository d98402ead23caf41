"""Real protocol peers for the integration tests, started and stopped by the test session:
a MongoDB-compatible server, KMS emulators over TLS, and the certificates they use."""
