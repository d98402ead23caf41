"""pymongocrypt.asynchronous: the asynchronous encrypters and callback contract pymongo uses."""
