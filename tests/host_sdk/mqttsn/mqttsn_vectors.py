"""Golden MQTT-SN v1.2 vectors, written by hand from the specification's message layouts.

Each entry is (hex datagram, codec class name, constructor keyword arguments). They drive the
decoder and the encoder (both directions), on CPython and on the MicroPython unix port, so this
file uses only literals MicroPython understands.
"""

LONG_DATA = b"\xaa" * 300

GOLDEN: list = [
    # ADVERTISE: GwId 1, Duration 900 s.
    ("05 00 01 0384", "Advertise", {"gw_id": 1, "duration_s": 900}),
    ("03 01 01", "SearchGw", {"radius": 1}),
    ("03 02 07", "GwInfo", {"gw_id": 7}),
    ("07 02 07 c0a80001", "GwInfo", {"gw_id": 7, "gw_address": b"\xc0\xa8\x00\x01"}),
    # CONNECT: flags Will|CleanSession, ProtocolId 1, Duration 60, ClientId "dev1".
    (
        "0a 04 0c 01 003c 64657631",
        "Connect",
        {"client_id": "dev1", "duration_s": 60, "will": True, "clean_session": True},
    ),
    (
        "07 04 00 01 ffff 61",
        "Connect",
        {"client_id": "a", "duration_s": 65535, "will": False, "clean_session": False},
    ),
    ("03 05 00", "Connack", {"return_code": 0}),
    ("03 05 03", "Connack", {"return_code": 3}),
    ("02 06", "WillTopicReq", {}),
    # WILLTOPIC: flags QoS 1 | Retain, topic "w".
    ("04 07 30 77", "WillTopic", {"topic": "w", "qos": 1, "retain": True}),
    ("02 07", "WillTopic", {"topic": ""}),
    ("02 08", "WillMsgReq", {}),
    ("05 09 627965", "WillMsg", {"message": b"bye"}),
    ("09 0a 0000 0001 612f62", "Register", {"topic_id": 0, "msg_id": 1, "topic_name": "a/b"}),
    ("07 0b 0001 0001 00", "Regack", {"topic_id": 1, "msg_id": 1, "return_code": 0}),
    # PUBLISH QoS 1, normal topic id 1, MsgId 2, "hi".
    (
        "09 0c 20 0001 0002 6869",
        "Publish",
        {"topic_id": 1, "data": b"hi", "qos": 1, "msg_id": 2},
    ),
    # PUBLISH QoS -1 | Retain | predefined id 7, MsgId 0, "x".
    (
        "08 0c 71 0007 0000 78",
        "Publish",
        {"topic_id": 7, "data": b"x", "qos": -1, "topic_id_type": 1, "retain": True},
    ),
    # PUBLISH DUP | QoS 2 | short topic "ab", MsgId 0x1234, empty payload.
    (
        "07 0c c2 6162 1234",
        "Publish",
        {
            "topic_id": 0x6162,
            "data": b"",
            "qos": 2,
            "msg_id": 0x1234,
            "topic_id_type": 2,
            "dup": True,
        },
    ),
    # 255 bytes still fit the 1-octet length; 258 need the 3-octet form 01 LL LL.
    (
        "ff 0c 00 0001 0000" + "55" * 248,
        "Publish",
        {"topic_id": 1, "data": b"\x55" * 248},
    ),
    (
        "01 0102 0c 00 0001 0000" + "55" * 249,
        "Publish",
        {"topic_id": 1, "data": b"\x55" * 249},
    ),
    (
        "01 0135 0c 00 0001 0000" + "aa" * 300,
        "Publish",
        {"topic_id": 1, "data": LONG_DATA},
    ),
    ("07 0d 0001 0002 02", "Puback", {"topic_id": 1, "msg_id": 2, "return_code": 2}),
    ("04 0f 1234", "Pubrec", {"msg_id": 0x1234}),
    ("04 10 1234", "Pubrel", {"msg_id": 0x1234}),
    ("04 0e 1234", "Pubcomp", {"msg_id": 0x1234}),
    # SUBSCRIBE QoS 1, topic name "s/#", MsgId 3.
    ("08 12 20 0003 732f23", "Subscribe", {"msg_id": 3, "topic_name": "s/#", "qos": 1}),
    # SUBSCRIBE DUP | QoS 2 | predefined id 7, MsgId 4.
    (
        "07 12 c1 0004 0007",
        "Subscribe",
        {"msg_id": 4, "topic_id": 7, "topic_id_type": 1, "qos": 2, "dup": True},
    ),
    # SUBACK granted QoS 1, TopicId 0 (wildcard), MsgId 3, accepted.
    ("08 13 20 0000 0003 00", "Suback", {"topic_id": 0, "msg_id": 3, "qos": 1}),
    ("08 14 00 0005 732f23", "Unsubscribe", {"msg_id": 5, "topic_name": "s/#"}),
    ("07 14 02 0006 6162", "Unsubscribe", {"msg_id": 6, "topic_id": 0x6162, "topic_id_type": 2}),
    ("04 15 0005", "Unsuback", {"msg_id": 5}),
    ("02 16", "Pingreq", {}),
    ("06 16 64657631", "Pingreq", {"client_id": "dev1"}),
    ("02 17", "Pingresp", {}),
    ("02 18", "Disconnect", {}),
    ("04 18 012c", "Disconnect", {"duration_s": 300}),
    ("06 1a 40 772f78", "WillTopicUpd", {"topic": "w/x", "qos": 2}),
    ("02 1a", "WillTopicUpd", {"topic": ""}),
    ("03 1b 00", "WillTopicResp", {"return_code": 0}),
    ("04 1c 0001", "WillMsgUpd", {"message": b"\x00\x01"}),
    ("03 1d 01", "WillMsgResp", {"return_code": 1}),
    # Forwarder Encapsulation: Length 5 counts up to the end of WirelessNodeId 0a0b, radius 1,
    # then the whole inner PINGREQ.
    (
        "05 fe 01 0a0b 0216",
        "Encapsulated",
        {"radius": 1, "wireless_node_id": b"\x0a\x0b", "message": b"\x02\x16"},
    ),
]

# Malformed datagrams: (hex, text the error message must contain).
MALFORMED: list = [
    ("", "shorter than any"),
    ("05", "shorter than any"),
    ("01 00", "3-octet length form"),
    ("03 0c 20", "PUBLISH"),
    ("05 0c 20 0001", "PUBLISH: body must be at least 5"),
    ("09 0c 20 0001 0002 68", "length field says 9"),
    ("08 0c 20 0001 0002 6869", "length field says 8"),
    ("01 000a 0c 20 0001 0002", "length field says 10"),
    ("03 03 00", "type 0x03 is reserved"),
    ("02 11", "type 0x11 is reserved"),
    ("02 ff", "type 0xFF is reserved"),
    ("06 04 04 01 003c", "CONNECT: body must be at least 5"),
    ("1e 04 04 01 003c" + "61" * 24, "CONNECT: client id must be 1..23 bytes"),
    ("07 0c 03 0001 0000", "PUBLISH: topic id type 3 is reserved"),
    ("07 12 61 0001 0007", "SUBSCRIBE: QoS -1"),
    ("07 0a 0000 0001 ff", "REGISTER: topic name is not valid UTF-8"),
    ("03 18 00", "DISCONNECT: body must be 2"),
    ("03 05", "length field says 3"),
    ("02 05", "CONNACK: body must be 1"),
    ("04 07 80 77", "WILLTOPIC: flags 0x80"),
    ("05 fe 04 0a0b 0216", "ENCAPSULATED: ctrl 0x04"),
    ("05 fe 01 0a0b 02", "ENCAPSULATED"),
    ("1a 16" + "61" * 24, "PINGREQ: client id must be 1..23 bytes"),
    ("09 13 20 0000 0003 00 00", "SUBACK: body must be 6"),
]


def unhex(text: str) -> bytes:
    """Bytes from a hex string with optional spaces (MicroPython has no bytes.fromhex)."""
    text = text.replace(" ", "")
    return bytes(int(text[i : i + 2], 16) for i in range(0, len(text), 2))
