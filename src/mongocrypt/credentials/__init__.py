"""On-demand KMS credentials: what the engine asks for in the ``NEED_KMS_CREDENTIALS`` state.

A KMS provider configured as an empty document (``{"aws": {}}``) is filled in only when
libmongocrypt asks for it, never in advance. :meth:`OnDemandCredentials.fetch` (or
:meth:`~OnDemandCredentials.fetch_async`) returns a new mapping holding exactly the providers asked
for, each from its source:

``aws``
    The user's ``aws_provider`` function when one is given (it replaces discovery). Otherwise the
    MongoDB authentication specification's discovery order, without URI credentials:

    1. environment variables ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and, optionally,
       ``AWS_SESSION_TOKEN``;
    2. web identity: the token in ``AWS_WEB_IDENTITY_TOKEN_FILE`` exchanged for temporary
       credentials of ``AWS_ROLE_ARN`` by STS ``AssumeRoleWithWebIdentity`` (session name from
       ``AWS_ROLE_SESSION_NAME``, or a random one);
    3. ECS: ``GET`` of ``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`` on the task metadata endpoint;
    4. EC2 instance metadata (IMDSv2): a session token, then the instance's IAM role, then its
       credentials.

    The first source that is configured is used; a configured source that fails raises at once.
    When none gives credentials the error lists what was tried.

``gcp``
    The access token of the instance's default service account, from the GCE metadata server.

``azure``
    A managed-identity access token for Key Vault, from the Azure Instance Metadata Service (IMDS).
    Tokens are kept in a process-wide, thread-safe cache keyed by the IMDS token URL and reused
    while they expire more than a minute from now (the expiry counts from just before the request).

Named providers (``"aws:name"``) never get automatic credentials. Every failure raises
:class:`~mongocrypt.errors.CredentialsError`, naming the provider and the URL and quoting the
reply's status and (truncated) body; secrets in a quoted body are redacted first, and no message,
repr or log line carries a token or key. Each HTTP exchange must complete, from connecting to the
last byte of the reply, within ``timeout`` seconds (on the blocking path a read already under way
at that deadline may still take its own ``timeout``); requests to metadata services ignore proxy
environment variables, the STS request honours them.

The package: ``_steps`` (the sans-I/O step types and reply parsing), one source module per
provider (``_aws``, ``_gcp``, ``_azure``) with ``_sources`` choosing among them, ``_token_cache``,
``_endpoints`` and ``_on_demand`` (the public classes), and the runners that perform the steps:
``_async_runner``, written by hand, ``_sync_runner``, generated from it by tools/gen_sync.py, and
``_bound``, the one step they cannot share.
"""

from mongocrypt.credentials._aws import AwsCredentialProvider
from mongocrypt.credentials._endpoints import CredentialEndpoints
from mongocrypt.credentials._on_demand import OnDemandCredentials

__all__ = ["AwsCredentialProvider", "CredentialEndpoints", "OnDemandCredentials"]
