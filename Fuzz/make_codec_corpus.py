#!/usr/bin/env python3
"""Writes the seed corpus of the FuzzCodec target to Fuzz/corpus/FuzzCodec/.

Each file is one fuzz input: two selector bytes (see Fuzz/FuzzCodec/FuzzCodec.swift) then a
byte stream. Seeds come from
  * every hex("...") byte vector in Tests/MQTTCodecTests/*.swift (valid and malformed packets),
    each read by a v3.1.1 and by a v5 decoder;
  * packets built here, field by field, with a small encoder independent of the codec: every
    packet type, every property id, CONNECT of levels 3/4/5 with will, user name and password;
  * streams: a CONNECT then packets of its version, for a server-side decoder (the CONNECT
    decides), cut into reads in different ways.
Usage: python3 Fuzz/make_codec_corpus.py   (deterministic; rewrites its own named files and
leaves the others, the fuzzer's finds added by `scripts/fuzz.sh merge FuzzCodec`, in place)
"""
import hashlib
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Fuzz", "corpus", "FuzzCodec")

# Selector byte 0: bits 0-1 version (0 none, 1 = 3, 2 = 4, 3 = 5), bits 2-4 split mode,
# bits 5-6 maximum packet size, bit 7 stop after the first packet. Byte 1: split parameter.
V_NONE, V3, V4, V5 = 0, 1, 2, 3
WHOLE, BYTEWISE, FIXED, TWO, RSMALL, RLARGE, REMPTY, THREE = range(8)


def selector(version, split=WHOLE, parameter=0, max_size=0, stop=False):
    return bytes([version | split << 2 | max_size << 5 | (0x80 if stop else 0), parameter])


# --- a small MQTT encoder (spec 1.5, 2, 3) -------------------------------------------------

def vbi(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def u16(n): return n.to_bytes(2, "big")
def u32(n): return n.to_bytes(4, "big")
def s(text): b = text.encode(); return u16(len(b)) + b
def binary(b): return u16(len(b)) + b
def frame(first, body): return bytes([first]) + vbi(len(body)) + body
def props(*items): body = b"".join(items); return vbi(len(body)) + body


P = dict(payload_format=0x01, message_expiry=0x02, content_type=0x03, response_topic=0x08,
         correlation=0x09, subscription_id=0x0B, session_expiry=0x11, assigned_id=0x12,
         server_keep_alive=0x13, auth_method=0x15, auth_data=0x16, request_problem=0x17,
         will_delay=0x18, request_response=0x19, response_info=0x1A, server_reference=0x1C,
         reason_string=0x1F, receive_maximum=0x21, topic_alias_maximum=0x22, topic_alias=0x23,
         maximum_qos=0x24, retain_available=0x25, user_property=0x26, maximum_packet_size=0x27,
         wildcard_available=0x28, subscription_ids_available=0x29, shared_available=0x2A)


def prop(name, value):
    return bytes([P[name]]) + value


def connect(level=5, client="c", clean=True, keep_alive=60, properties=b"", will=None, user=None, password=None):
    name = "MQIsdp" if level == 3 else "MQTT"
    flags = 0x02 if clean else 0
    payload = s(client)
    if will:
        topic, message, qos, retain, will_props = will
        flags |= 0x04 | qos << 3 | (0x20 if retain else 0)
        payload += (props(*will_props) if level == 5 else b"") + s(topic) + binary(message)
    if user is not None:
        flags |= 0x80
        payload += s(user)
    if password is not None:
        flags |= 0x40
        payload += binary(password)
    body = s(name) + bytes([level, flags]) + u16(keep_alive) + (props(properties) if level == 5 else b"") + payload
    return frame(0x10, body)


def publish(topic, payload=b"", qos=0, packet_id=1, retain=False, dup=False, v5=False, properties=b""):
    first = 0x30 | (0x08 if dup else 0) | qos << 1 | (1 if retain else 0)
    body = s(topic) + (u16(packet_id) if qos else b"") + (props(properties) if v5 else b"") + payload
    return frame(first, body)


def ack(first, packet_id, v5=False, reason=None, properties=None):
    body = u16(packet_id)
    if v5 and reason is not None:
        body += bytes([reason])
        if properties is not None:
            body += props(properties)
    return frame(first, body)


def subscribe(packet_id, filters, v5=False, properties=b""):
    body = u16(packet_id) + (props(properties) if v5 else b"")
    for f, options in filters:
        body += s(f) + bytes([options])
    return frame(0x82, body)


def unsubscribe(packet_id, filters, v5=False, properties=b""):
    return frame(0xA2, u16(packet_id) + (props(properties) if v5 else b"") + b"".join(s(f) for f in filters))


def reason_packet(first, reason=None, properties=None):
    body = b""
    if reason is not None:
        body += bytes([reason])
        if properties is not None:
            body += props(properties)
    return frame(first, body)


# --- seeds --------------------------------------------------------------------------------

seeds = []  # (name, bytes)


def add(name, data):
    seeds.append((name, data))


def vectors_from_tests():
    found = []
    folder = os.path.join(ROOT, "Tests", "MQTTCodecTests")
    for file in sorted(os.listdir(folder)):
        if not file.endswith(".swift"):
            continue
        text = open(os.path.join(folder, file), encoding="utf-8").read()
        for match in re.finditer(r'hex\(\s*"""(.*?)"""\s*\)|hex\("([0-9a-fA-F ]*)"\)', text, re.S):
            digits = re.sub(r"\s", "", match.group(1) or match.group(2) or "")
            if digits and len(digits) % 2 == 0:
                found.append((file[:-6], bytes.fromhex(digits)))
    return found


def build():
    seen = set()
    for test, data in vectors_from_tests():
        if data in seen:
            continue
        seen.add(data)
        digest = hashlib.sha1(data).hexdigest()[:8]
        add(f"test-{test}-{digest}-v4", selector(V4) + data)
        add(f"test-{test}-{digest}-v5", selector(V5) + data)

    # CONNECT, every level, with and without will / credentials (the CONNECT decides the version).
    for level in (3, 4, 5):
        add(f"connect-l{level}-min", selector(V_NONE) + connect(level))
        add(f"connect-l{level}-full", selector(V_NONE, RSMALL, level) + connect(
            level, client="client-1", clean=False, keep_alive=0xFFFF,
            will=("clients/c1/status", b"offline", 2, True, [prop("will_delay", u32(120))]),
            user="alice", password=b"s3cret"))
        add(f"connect-l{level}-will-qos1", selector(V_NONE) + connect(level, will=("w", b"", 1, False, [])))
    add("connect-l5-password-only", selector(V_NONE) + connect(5, password=b"token"))
    add("connect-l5-props", selector(V_NONE, TWO, 20) + connect(5, properties=b"".join([
        prop("session_expiry", u32(0xFFFFFFFF)), prop("receive_maximum", u16(20)),
        prop("maximum_packet_size", u32(1 << 20)), prop("topic_alias_maximum", u16(10)),
        prop("request_response", b"\x01"), prop("request_problem", b"\x00"),
        prop("auth_method", s("SCRAM-SHA-256")), prop("auth_data", binary(b"\x09\x08\x07")),
        prop("user_property", s("region") + s("eu")), prop("user_property", s("") + s(""))])))
    add("connect-l5-will-props", selector(V_NONE) + connect(5, client="c1", will=("clients/c1/status", b"gone", 2, True, [
        prop("will_delay", u32(120)), prop("payload_format", b"\x01"), prop("message_expiry", u32(3600)),
        prop("content_type", s("text/plain")), prop("response_topic", s("replies/c1")),
        prop("correlation", binary(b"\x01\x02\x03")), prop("user_property", s("a") + s("1")),
        prop("user_property", s("a") + s("2"))])))

    # CONNACK.
    for code in range(6):
        add(f"connack-v4-{code}", selector(V4) + frame(0x20, bytes([1 if code == 0 else 0, code])))
    add("connack-v5-min", selector(V5) + frame(0x20, b"\x00\x00"))
    add("connack-v5-props", selector(V5, FIXED, 7) + frame(0x20, b"\x01\x00" + props(
        prop("assigned_id", s("auto-7f3a")), prop("server_keep_alive", u16(120)), prop("receive_maximum", u16(100)),
        prop("maximum_qos", b"\x01"), prop("retain_available", b"\x00"), prop("maximum_packet_size", u32(65536)),
        prop("topic_alias_maximum", u16(16)), prop("wildcard_available", b"\x01"),
        prop("subscription_ids_available", b"\x00"), prop("shared_available", b"\x01"),
        prop("reason_string", s("welcome")), prop("response_info", s("resp/")),
        prop("server_reference", s("other:1883")), prop("session_expiry", u32(300)),
        prop("auth_method", s("PLAIN")), prop("auth_data", binary(b"\x01")), prop("user_property", s("x") + s("y")))))
    add("connack-v5-refused", selector(V5) + frame(0x20, b"\x00\x87\x00"))

    # PUBLISH.
    for v, version in ((V3, "v3"), (V4, "v4"), (V5, "v5")):
        v5 = v == V5
        for qos in (0, 1, 2):
            add(f"publish-{version}-qos{qos}", selector(v) + publish("a/b/c", b"hello", qos, 0xBEEF, retain=qos == 1, dup=qos == 2, v5=v5))
        add(f"publish-{version}-unicode", selector(v) + publish("maison/température/€/𝄞", b"21", v5=v5))
        add(f"publish-{version}-binary", selector(v, RLARGE, 9) + publish("t", bytes(range(256)), 1, 1, v5=v5))
    add("publish-v5-props", selector(V5, RSMALL, 3) + publish("a", b"{}", 1, 7, v5=True, properties=b"".join([
        prop("payload_format", b"\x01"), prop("message_expiry", u32(60)), prop("topic_alias", u16(3)),
        prop("response_topic", s("reply/here")), prop("correlation", binary(b"\xca\xfe")),
        prop("user_property", s("k") + s("v")), prop("user_property", s("k") + s("v")),
        prop("subscription_id", vbi(1)), prop("subscription_id", vbi(127)), prop("subscription_id", vbi(128)),
        prop("subscription_id", vbi(16384)), prop("subscription_id", vbi(268435455)),
        prop("content_type", s("application/json"))])))
    add("publish-v5-alias-empty-topic", selector(V5) + publish("", b"x", v5=True, properties=prop("topic_alias", u16(1))))
    add("publish-v5-large", selector(V5, RLARGE, 77) + publish("big", bytes(300), v5=True))

    # PUBACK / PUBREC / PUBREL / PUBCOMP.
    for first in (0x40, 0x50, 0x62, 0x70):
        add(f"ack-{first:02x}-v4", selector(V4) + ack(first, 1))
        add(f"ack-{first:02x}-v5-reason", selector(V5) + ack(first, 0x1234, True, 0x10))
        add(f"ack-{first:02x}-v5-props", selector(V5) + ack(first, 2, True, 0x80, prop("reason_string", s("no")) + prop("user_property", s("a") + s("b"))))

    # SUBSCRIBE / SUBACK / UNSUBSCRIBE / UNSUBACK.
    add("subscribe-v4", selector(V4) + subscribe(10, [("sensors/0/#", 0), ("sensors/1/+", 1), ("a/b", 2)]))
    add("subscribe-v5-options", selector(V5) + subscribe(1, [("f/0/+", 0x2E), ("$share/g/t", 0x01), ("#", 0x18)], True))
    add("subscribe-v5-props", selector(V5) + subscribe(2, [("#", 0)], True, prop("subscription_id", vbi(268435455)) + prop("user_property", s("a") + s("b"))))
    add("suback-v4", selector(V4) + frame(0x90, u16(1) + b"\x00\x01\x02\x80"))
    add("suback-v5", selector(V5) + frame(0x90, u16(77) + props(prop("reason_string", s("partly"))) + b"\x00\x01\x02\x80\x83\x87\x8f\x91\x97\x9e\xa1\xa2"))
    add("unsubscribe-v4", selector(V4) + unsubscribe(3, ["a/b", "#", "+/x", "$share/g/t", "ü"]))
    add("unsubscribe-v5", selector(V5) + unsubscribe(3, ["a"], True, prop("user_property", s("why") + s("done"))))
    add("unsuback-v4", selector(V4) + frame(0xB0, u16(0x0102)))
    add("unsuback-v5", selector(V5) + frame(0xB0, u16(1) + props(prop("reason_string", s("r"))) + b"\x00\x11\x87\x8f\x80"))

    # PING, DISCONNECT, AUTH.
    add("pings", selector(V4, BYTEWISE) + b"\xc0\x00\xd0\x00")
    add("disconnect-v5-props", selector(V5) + reason_packet(0xE0, 0x9D, b"".join([
        prop("session_expiry", u32(0)), prop("reason_string", s("moving")), prop("server_reference", s("b.example")),
        prop("user_property", s("x") + s("1"))])))
    add("disconnect-v5-reason", selector(V5) + reason_packet(0xE0, 0x8E))
    add("auth-v5-props", selector(V5) + reason_packet(0xF0, 0x18, b"".join([
        prop("auth_method", s("SCRAM-SHA-1")), prop("auth_data", binary(b"\x6e\x2c\x2c\x00\xff")),
        prop("reason_string", s("step 2")), prop("user_property", s("k") + s("v"))])))

    # Whole sessions as one stream, cut into reads in every mode (server side: CONNECT decides).
    session5 = (connect(5, client="mqttx", user="u", password=b"p", properties=prop("session_expiry", u32(0)))
                + subscribe(1, [("a/+", 0x01)], True) + publish("a/b", b"hello", 1, 2, v5=True)
                + ack(0x40, 2, True, 0x10) + publish("a/c", b"x" * 40, 2, 3, v5=True) + ack(0x62, 3)
                + unsubscribe(4, ["a/+"], True) + b"\xc0\x00" + reason_packet(0xE0, 0x04))
    session4 = (connect(4, client="c4", will=("w/t", b"bye", 1, True, [])) + subscribe(1, [("a/#", 1)])
                + publish("a/b", b"hi", 1, 5) + ack(0x40, 5) + unsubscribe(2, ["a/#"]) + b"\xc0\x00\xe0\x00")
    session3 = connect(3, client="old") + publish("t", b"v3") + b"\xc0\x00\xe0\x00"
    client5 = frame(0x20, b"\x00\x00\x00") + frame(0x90, u16(1) + b"\x00\x01") + publish("x", b"y", 0, v5=True) + b"\xd0\x00"
    for split in range(8):
        add(f"session-v5-split{split}", selector(V_NONE, split, 13 * split + 1) + session5)
        add(f"session-v4-split{split}", selector(V_NONE, split, 29 * split + 3) + session4)
    add("session-v3", selector(V_NONE, RSMALL, 5) + session3)
    add("session-v5-stop", selector(V_NONE, TWO, 60, stop=True) + session5)
    add("client-v5", selector(V5, THREE, 0x93) + client5)
    # Maximum packet size (0x95 from the fixed header alone).
    add("max16-publish", selector(V5, RSMALL, 2, max_size=1) + publish("t", b"0123456789abcdef", v5=True))
    add("max128-session", selector(V_NONE, FIXED, 3, max_size=2) + session5)
    # Remaining length: 2-, 3- and 4-byte forms, and a packet cut short.
    add("vbi-2", selector(V4) + publish("t", bytes(200)))
    add("vbi-truncated", selector(V4, BYTEWISE) + b"\x30\xff\xff\xff\x7f")
    add("vbi-5-bytes", selector(V4) + b"\x30\xff\xff\xff\xff\x01")


def main():
    build()
    os.makedirs(OUT, exist_ok=True)
    names = set()
    for name, data in seeds:
        assert name not in names, name
        names.add(name)
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} seeds in {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
