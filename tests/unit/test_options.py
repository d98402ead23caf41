"""Option validation names the offending option; reprs keep secrets out."""

from __future__ import annotations

import os

import bson
import pytest

from mongocrypt.engine import DataKeyOptions, ExplicitEncryptOptions, MongoCryptOptions


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"kms_providers": ["local"]}, TypeError, "kms_providers must be a mapping"),
        ({"kms_providers": {}}, ValueError, "at least one KMS provider"),
        ({"kms_providers": {"aws": "secret"}}, TypeError, "kms_providers['aws']"),
        ({"kms_providers": {1: {}}}, TypeError, "kms_providers keys must be str"),
        ({"schema_map": ["db.coll"]}, TypeError, "schema_map must be a mapping or BSON"),
        ({"encrypted_fields_map": 3}, TypeError, "encrypted_fields_map"),
        ({"bypass_query_analysis": "yes"}, TypeError, "bypass_query_analysis must be a bool"),
        ({"crypt_shared_lib_path": 5}, TypeError, "crypt_shared_lib_path"),
        ({"crypt_shared_lib_required": 1}, TypeError, "crypt_shared_lib_required"),
        ({"key_expiration_ms": -1}, ValueError, "key_expiration_ms must be >= 0"),
        ({"key_expiration_ms": True}, TypeError, "key_expiration_ms must be an int"),
        ({"crypt_shared_lib_search_paths": "$SYSTEM"}, TypeError, "crypt_shared_lib_search_paths"),
    ],
)
def test_bad_handle_options_name_the_option(kwargs: dict, error: type, text: str) -> None:
    kwargs.setdefault("kms_providers", {"local": {"key": os.urandom(96)}})
    with pytest.raises(error) as info:
        MongoCryptOptions(**kwargs)
    assert text in str(info.value)


@pytest.mark.requirement("CSE-CE-01", "CSE-SHL-02", "CSE-SHL-03")
def test_search_paths_follow_the_spec() -> None:
    providers = {"local": {"key": os.urandom(96)}}
    assert MongoCryptOptions(providers).crypt_shared_lib_search_paths == ("$SYSTEM",)
    assert MongoCryptOptions(providers, bypass_encryption=True).crypt_shared_lib_search_paths == ()


def test_maps_are_accepted_as_mappings_or_bson() -> None:
    schema = {"db.coll": {"bsonType": "object"}}
    providers = {"local": {"key": os.urandom(96)}}
    assert MongoCryptOptions(providers, schema_map=schema).schema_map == bson.encode(schema)
    assert MongoCryptOptions(providers, schema_map=bson.encode(schema)).schema_map == bson.encode(
        schema
    )


def test_empty_provider_settings_mean_on_demand_credentials() -> None:
    options = MongoCryptOptions({"aws": {}, "local": {"key": os.urandom(96)}, "azure:named": {}})
    assert options.on_demand_providers == ("aws", "azure:named")


def test_repr_hides_credentials() -> None:
    key = os.urandom(96)
    options = MongoCryptOptions(
        {"local": {"key": key}, "aws": {"accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "s3cr3t"}}
    )
    text = repr(options)
    assert "aws" in text and "local" in text
    assert "s3cr3t" not in text and "AKIDEXAMPLE" not in text and repr(key) not in text


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({}, ValueError, "exactly one of key_id and key_alt_name"),
        ({"key_id": b"x" * 16, "key_alt_name": "a"}, ValueError, "exactly one"),
        ({"key_id": b"short"}, ValueError, "key_id must be 16 bytes"),
        ({"key_id": "0" * 16}, TypeError, "key_id must be 16 bytes, not str"),
        ({"key_alt_name": 7}, TypeError, "key_alt_name must be a str"),
        ({"key_alt_name": "a", "contention_factor": True}, TypeError, "contention_factor"),
        ({"key_alt_name": "a", "contention_factor": 1.5}, TypeError, "contention_factor"),
        ({"key_alt_name": "a", "query_type": 1}, TypeError, "query_type"),
        ({"key_alt_name": "a", "range_opts": {"min": 0}}, TypeError, "range_opts must be BSON"),
        ({"key_alt_name": "a", "string_opts": {"prefix": {}}}, TypeError, "string_opts"),
    ],
)
def test_bad_explicit_options_name_the_option(kwargs: dict, error: type, text: str) -> None:
    with pytest.raises(error) as info:
        ExplicitEncryptOptions("Indexed", **kwargs)
    assert text in str(info.value)


def test_algorithm_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="algorithm must be a str"):
        ExplicitEncryptOptions(1, key_alt_name="a")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"kms_provider": 1}, "kms_provider must be a str"),
        ({"kms_provider": "aws", "master_key": "arn"}, "master_key must be a mapping"),
        (
            {"kms_provider": "local", "key_alt_names": "abc"},
            "key_alt_names must be a sequence of str",
        ),
        ({"kms_provider": "local", "key_material": "x" * 96}, "key_material must be bytes"),
    ],
)
def test_bad_data_key_options_name_the_option(kwargs: dict, text: str) -> None:
    with pytest.raises(TypeError, match=text):
        DataKeyOptions(**kwargs)


def test_data_key_options_repr_redacts_key_material() -> None:
    material = os.urandom(96)
    text = repr(DataKeyOptions("local", key_material=material))
    assert "<redacted>" in text and material.hex() not in text and repr(material) not in text


def test_contention_factor_must_fit_int64() -> None:
    with pytest.raises(ValueError, match="contention_factor must fit in 64 bits"):
        ExplicitEncryptOptions("Indexed", key_alt_name="a", contention_factor=2**63)
