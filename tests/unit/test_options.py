"""Option validation names the offending option; reprs keep secrets out."""

from __future__ import annotations

import os
from typing import Any

import bson
import pytest

import mongocrypt
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
def test_bad_handle_options_name_the_option(kwargs: dict[str, Any], error: type, text: str) -> None:
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
def test_bad_explicit_options_name_the_option(
    kwargs: dict[str, Any], error: type, text: str
) -> None:
    with pytest.raises(error) as info:
        ExplicitEncryptOptions("Indexed", **kwargs)
    assert text in str(info.value)


def test_algorithm_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="algorithm must be a str"):
        ExplicitEncryptOptions(1, key_alt_name="a")  # type: ignore[arg-type]  # a wrong type on purpose


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
def test_bad_data_key_options_name_the_option(kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises(TypeError, match=text):
        DataKeyOptions(**kwargs)


def test_data_key_options_repr_redacts_key_material() -> None:
    material = os.urandom(96)
    text = repr(DataKeyOptions("local", key_material=material))
    assert "<redacted>" in text and material.hex() not in text and repr(material) not in text


def test_contention_factor_must_fit_int64() -> None:
    with pytest.raises(ValueError, match="contention_factor must fit in 64 bits"):
        ExplicitEncryptOptions("Indexed", key_alt_name="a", contention_factor=2**63)


# Issue 15 item 2: the public options are checked when built, naming the option.
from bson import Binary  # noqa: E402
from bson.binary import UUID_SUBTYPE  # noqa: E402

from mongocrypt import Algorithm, AutoEncryptionOpts, DataKeyOpts, EncryptOpts, StringOpts  # noqa: E402

PREFIX = {"strMinQueryLength": 1, "strMaxQueryLength": 3}


def test_misspelt_algorithm_is_refused_naming_the_valid_ones() -> None:
    with pytest.raises(ValueError) as info:
        EncryptOpts("AEAD_AES_256_CBC_HMAC_SHA_512-Deterministc", key_alt_name="a")  # type: ignore[arg-type]  # the misspelling under test
    assert "algorithm must be one of" in str(info.value)
    assert Algorithm.DETERMINISTIC in str(info.value) and Algorithm.INDEXED in str(info.value)


def test_algorithm_and_query_type_match_in_any_case_as_libmongocrypt_does() -> None:
    opts = EncryptOpts(
        "indexed",  # type: ignore[arg-type]  # run-time spelling, not a typed constant
        key_alt_name="a",
        contention_factor=0,
        query_type="EQUALITY",  # type: ignore[arg-type]  # likewise
    )
    assert (opts.algorithm, opts.query_type) == ("Indexed", "equality")
    with pytest.raises(ValueError, match="query_type must be one of equality, range"):
        EncryptOpts("Indexed", key_alt_name="a", contention_factor=0, query_type="prefixPreview")  # type: ignore[arg-type]  # stale name


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"algorithm": "Indexed", "contention_factor": -1}, "contention_factor must be >= 0"),
        ({"algorithm": Algorithm.RANDOM, "contention_factor": 0}, "contention_factor is for"),
        ({"algorithm": "Range", "contention_factor": 0}, "range_opts is required with the Range"),
        ({"algorithm": "Indexed", "string_opts": StringOpts(True, True, PREFIX)}, "string_opts"),
    ],
)
def test_encrypt_opts_refuse_impossible_combinations(kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises(ValueError, match=text):
        EncryptOpts(key_alt_name="a", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({}, "needs one of prefix, suffix and substring"),
        (
            {"prefix": PREFIX, "substring": {**PREFIX, "strMaxLength": 9}},
            "substring cannot be combined",
        ),
        ({"prefix": {"strMinQueryLength": 1}}, "prefix takes exactly .*missing strMaxQueryLength"),
        ({"suffix": {**PREFIX, "strMax": 2}}, "unknown strMax"),
        ({"prefix": {"strMinQueryLength": 0, "strMaxQueryLength": 3}}, "must be > 0"),
        ({"prefix": {"strMinQueryLength": 5, "strMaxQueryLength": 3}}, "must not exceed"),
        ({"substring": PREFIX}, "missing strMaxLength"),
    ],
)
def test_string_opts_refuse_conflicting_or_missing_parts(kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises(ValueError, match=text) as info:
        StringOpts(True, True, **kwargs)
    assert "TextOpts" not in str(info.value)


def test_key_vault_namespace_without_a_dot_is_refused_by_auto_encryption_opts() -> None:
    with pytest.raises(ValueError, match=r"key_vault_namespace must be 'database\.collection'"):
        AutoEncryptionOpts({"local": {"key": os.urandom(96)}}, "keyvault")


@pytest.mark.parametrize(
    ("key", "error", "text"),
    [
        (os.urandom(95), ValueError, r"\['key'\] must be 96 bytes, not 95"),
        ("x" * 96, TypeError, "not a str of 96 characters"),
        (96, TypeError, "must be 96 bytes, not int"),
    ],
    ids=["95-bytes", "96-char-str", "int"],
)
def test_local_master_key_is_checked_when_options_are_built(
    key: object, error: type, text: str
) -> None:
    with pytest.raises(error, match=text):
        AutoEncryptionOpts({"local": {"key": key}}, "encryption.__keyVault")
    with pytest.raises(error, match=text):
        MongoCryptOptions({"local:named": {"key": key}})


def test_local_master_key_as_base64_text_is_accepted() -> None:
    import base64

    MongoCryptOptions({"local": {"key": base64.b64encode(os.urandom(96)).decode()}})


def test_key_material_must_be_96_bytes() -> None:
    with pytest.raises(ValueError, match="key_material must be 96 bytes, not 32"):
        DataKeyOpts(key_material=os.urandom(32))


def test_schema_key_id_of_the_wrong_type_names_the_field_path() -> None:
    schema = {
        "db.coll": {
            "properties": {"ssn": {"encrypt": {"keyId": "not-a-pointer", "bsonType": "string"}}}
        }
    }
    with pytest.raises(TypeError) as info:
        AutoEncryptionOpts({"local": {"key": os.urandom(96)}}, "k.v", schema_map=schema)
    assert "schema_map['db.coll'].properties.ssn.encrypt.keyId must be a list of UUIDs" in str(
        info.value
    )
    fields = {"db.qe": {"fields": [{"path": "a", "keyId": "nope", "bsonType": "string"}]}}
    with pytest.raises(TypeError, match=r"encrypted_fields_map\['db.qe'\].fields\[0\].keyId"):
        MongoCryptOptions({"local": {"key": os.urandom(96)}}, encrypted_fields_map=fields)
    good = {
        "db.coll": {
            "properties": {"ssn": {"encrypt": {"keyId": [Binary(b"k" * 16, UUID_SUBTYPE)]}}}
        }
    }
    MongoCryptOptions({"local": {"key": os.urandom(96)}}, schema_map=good)


def test_schema_key_id_may_be_a_json_pointer_and_encrypt_metadata_is_checked_too() -> None:
    providers = {"local": {"key": os.urandom(96)}}
    pointer = {"db.c": {"properties": {"s": {"encrypt": {"keyId": "/owner"}}}}}
    MongoCryptOptions(providers, schema_map=pointer)
    metadata = {"db.c": {"encryptMetadata": {"keyId": ["not-a-uuid"]}}}
    with pytest.raises(TypeError, match=r"schema_map\['db.c'\].encryptMetadata.keyId must be"):
        MongoCryptOptions(providers, schema_map=metadata)


def test_encrypt_opts_build_their_engine_options_once() -> None:
    """Frozen options keep what they convert to, per kind (value or expression)."""
    from mongocrypt import RangeOpts

    key_id = Binary(os.urandom(16), UUID_SUBTYPE)
    ranged = EncryptOpts("Range", key_id=key_id, contention_factor=0, range_opts=RangeOpts(0, 9))
    first = ranged.engine_options()
    assert ranged.engine_options() is first
    assert ranged.engine_options(is_expression=True).is_expression
    assert first.range_opts == bson.encode({"min": 0, "max": 9}) and first.fast


@pytest.mark.skipif(
    not mongocrypt.has_string_algorithm, reason="needs a libmongocrypt with the String algorithm"
)
def test_encrypt_opts_with_string_opts_convert_afresh_each_time() -> None:
    """String options' affix dicts are the caller's, so a change to one is seen."""
    key_id = Binary(os.urandom(16), UUID_SUBTYPE)
    prefix = dict(PREFIX)
    texts = EncryptOpts(
        "String", key_id=key_id, contention_factor=0, string_opts=StringOpts(True, True, prefix)
    )
    before = texts.engine_options()
    prefix["strMaxQueryLength"] = 4
    after = texts.engine_options()
    assert after is not before and after.string_opts != before.string_opts
