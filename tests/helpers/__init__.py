"""What the suites share: the real peers (servers, KMS emulators, fakes), the KMIP responder, the
unified test runner and the leak script."""
