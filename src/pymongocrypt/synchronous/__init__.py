"""pymongocrypt.synchronous: the synchronous encrypters and callback contract pymongo uses."""
