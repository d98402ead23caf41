"""The former home of the on-demand credential sources, now :mod:`mongocrypt.credentials`.

Kept so that ``from mongocrypt.io.credentials import OnDemandCredentials`` goes on working.
"""

from mongocrypt.credentials import AwsCredentialProvider, CredentialEndpoints, OnDemandCredentials

__all__ = ["AwsCredentialProvider", "CredentialEndpoints", "OnDemandCredentials"]
