"""Just enough KMIP (TTLV encoding) to answer libmongocrypt's Register, Activate and Get requests
in offline engine tests. Tags and enumerations are from the OASIS KMIP 1.x specification."""

from __future__ import annotations

import struct
from typing import Union

STRUCTURE, INTEGER, ENUMERATION, TEXT, BYTES = 0x01, 0x02, 0x05, 0x07, 0x08
TAGS = {
    "BatchCount": 0x42000D,
    "BatchItem": 0x42000F,
    "KeyBlock": 0x420040,
    "KeyFormatType": 0x420042,
    "KeyMaterial": 0x420043,
    "KeyValue": 0x420045,
    "ObjectType": 0x420057,
    "Operation": 0x42005C,
    "ProtocolVersion": 0x420069,
    "ProtocolVersionMajor": 0x42006A,
    "ProtocolVersionMinor": 0x42006B,
    "ResponseHeader": 0x42007A,
    "ResponseMessage": 0x42007B,
    "ResponsePayload": 0x42007C,
    "ResultStatus": 0x42007F,
    "SecretData": 0x420085,
    "SecretDataType": 0x420086,
    "TimeStamp": 0x420092,
    "UniqueIdentifier": 0x420094,
}
OPERATIONS = {"Register": 0x03, "Get": 0x0A, "Activate": 0x12}

Item = tuple[int, int, Union[bytes, list["Item"], int, str]]


def encode(item: Item) -> bytes:
    tag, kind, value = item
    if kind == STRUCTURE:
        assert isinstance(value, list)
        body = b"".join(encode(child) for child in value)
    elif kind in (INTEGER, ENUMERATION):
        assert isinstance(value, int)
        body = struct.pack(">i", value)
    elif kind == TEXT:
        assert isinstance(value, str)
        body = value.encode()
    else:
        assert isinstance(value, bytes)
        body = value
    padding = b"\0" * (-len(body) % 8)
    return (
        struct.pack(">I", tag)[1:] + bytes([kind]) + struct.pack(">I", len(body)) + body + padding
    )


def decode(data: bytes) -> list[Item]:
    items: list[Item] = []
    offset = 0
    while offset < len(data):
        tag = int.from_bytes(data[offset : offset + 3], "big")
        kind = data[offset + 3]
        length = struct.unpack(">I", data[offset + 4 : offset + 8])[0]
        body = data[offset + 8 : offset + 8 + length]
        value: Union[bytes, list[Item], int, str]
        if kind == STRUCTURE:
            value = decode(body)
        elif kind in (INTEGER, ENUMERATION):
            value = struct.unpack(">i", body[:4])[0]
        elif kind == TEXT:
            value = body.decode()
        else:
            value = body
        items.append((tag, kind, value))
        offset += 8 + length + (-length % 8)
    return items


def find(items: list[Item], name: str) -> Union[bytes, list[Item], int, str, None]:
    """The value of the first item tagged ``name``, searched depth first."""
    for tag, kind, value in items:
        if tag == TAGS[name]:
            return value
        if kind == STRUCTURE:
            assert isinstance(value, list)
            found = find(value, name)
            if found is not None:
                return found
    return None


def t(name: str, kind: int, value: Union[bytes, list[Item], int, str]) -> Item:
    return (TAGS[name], kind, value)


class FakeKmipServer:
    """Stores the secrets libmongocrypt registers and hands them back on Get."""

    def __init__(self) -> None:
        self.secrets: dict[str, bytes] = {}
        self.operations: list[str] = []

    def respond(self, request: bytes) -> bytes:
        items = decode(request)
        operation = {code: name for name, code in OPERATIONS.items()}[find(items, "Operation")]  # type: ignore[index]  # find() gives an int for the Operation tag
        self.operations.append(operation)
        uid: object
        if operation == "Register":
            uid = f"uid-{len(self.secrets) + 1}"
            secret = find(items, "KeyMaterial")
            assert isinstance(secret, bytes)
            self.secrets[uid] = secret
            payload = [t("UniqueIdentifier", TEXT, uid)]
        elif operation == "Activate":
            uid = find(items, "UniqueIdentifier")
            assert isinstance(uid, str)
            payload = [t("UniqueIdentifier", TEXT, uid)]
        else:
            uid = find(items, "UniqueIdentifier")
            assert isinstance(uid, str)
            payload = [
                t("ObjectType", ENUMERATION, 0x07),
                t("UniqueIdentifier", TEXT, uid),
                t(
                    "SecretData",
                    STRUCTURE,
                    [
                        t("SecretDataType", ENUMERATION, 0x02),
                        t(
                            "KeyBlock",
                            STRUCTURE,
                            [
                                t("KeyFormatType", ENUMERATION, 0x01),
                                t(
                                    "KeyValue",
                                    STRUCTURE,
                                    [t("KeyMaterial", BYTES, self.secrets[uid])],
                                ),
                            ],
                        ),
                    ],
                ),
            ]
        return encode(
            t(
                "ResponseMessage",
                STRUCTURE,
                [
                    t(
                        "ResponseHeader",
                        STRUCTURE,
                        [
                            t(
                                "ProtocolVersion",
                                STRUCTURE,
                                [
                                    t("ProtocolVersionMajor", INTEGER, 1),
                                    t("ProtocolVersionMinor", INTEGER, 0),
                                ],
                            ),
                            t("BatchCount", INTEGER, 1),
                        ],
                    ),
                    t(
                        "BatchItem",
                        STRUCTURE,
                        [
                            t("Operation", ENUMERATION, OPERATIONS[operation]),
                            t("ResultStatus", ENUMERATION, 0),
                            t("ResponsePayload", STRUCTURE, payload),
                        ],
                    ),
                ],
            )
        )
