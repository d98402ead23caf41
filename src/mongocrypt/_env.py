"""Every environment variable mongocrypt reads, named once (the modules that read them import
these names; docs/configuration lists what each does)."""

#: The server the command line (and the demo and tests) connect to.
URI = "MONGODB_URI"
#: The query-analysis mode for clients built with pymongo's own ``AutoEncryptionOpts``.
QUERY_ANALYSIS = "MONGOCRYPT_QUERY_ANALYSIS"
#: ``0`` uses libmongocrypt's built-in crypto instead of mongocrypt's native hooks.
CRYPTO_HOOKS = "MONGOCRYPT_CRYPTO_HOOKS"
#: The command line's defaults: key vault namespace, config file, local master key (base64, or a
#: file holding it), and files of KMS providers and of KMS TLS options.
KEY_VAULT = "MONGOCRYPT_KEY_VAULT"
CONFIG = "MONGOCRYPT_CONFIG"
LOCAL_KEY = "MONGOCRYPT_LOCAL_KEY"
LOCAL_KEY_FILE = "MONGOCRYPT_LOCAL_KEY_FILE"
KMS_PROVIDERS_FILE = "MONGOCRYPT_KMS_PROVIDERS_FILE"
KMS_TLS_OPTIONS_FILE = "MONGOCRYPT_KMS_TLS_OPTIONS_FILE"
