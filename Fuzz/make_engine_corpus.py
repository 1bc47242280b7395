#!/usr/bin/env python3
"""Writes the seed corpus of FuzzEngine (Fuzz/corpus/FuzzEngine/): short client sessions in the
input layout of Fuzz/FuzzEngine/FuzzEngine.swift (a flags byte, then operations). Run from the
repository root; rerun after changing the layout."""
import os, struct

def vbi(n):
    out = bytearray()
    while True:
        b = n % 128; n //= 128
        out.append(b | (0x80 if n else 0))
        if not n: return bytes(out)

def s(text): b = text.encode(); return struct.pack(">H", len(b)) + b
def packet(first, body): return bytes([first]) + vbi(len(body)) + body
def props(raw=b""): return vbi(len(raw)) + raw

def connect(cid, level=4, clean=True, keepalive=60, will=None, expiry=None):
    flags = 0x02 if clean else 0
    payload = s(cid)
    p = b""
    if level == 5:
        p = props(b"" if expiry is None else b"\x11" + struct.pack(">I", expiry))
    if will:
        flags |= 0x04
        payload += (props() if level == 5 else b"") + s(will[0]) + s(will[1])
    name = s("MQIsdp") if level == 3 else s("MQTT")
    return packet(0x10, name + bytes([level, flags]) + struct.pack(">H", keepalive) + p + payload)

def subscribe(pid, filt, qos=0, level=4):
    return packet(0x82, struct.pack(">H", pid) + (props() if level == 5 else b"") + s(filt) + bytes([qos]))

def publish(topic, payload, qos=0, pid=1, retain=False, level=4, dup=False):
    first = 0x30 | (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    body = s(topic) + (struct.pack(">H", pid) if qos else b"") + (props() if level == 5 else b"") + payload
    return packet(first, body)

def ack(kind, pid): return packet(kind, struct.pack(">H", pid))
PUBACK, PUBREC, PUBREL, PUBCOMP = 0x40, 0x50, 0x62, 0x70
PINGREQ = packet(0xC0, b""); DISCONNECT = packet(0xE0, b"")

def send(slot, data):
    out = bytearray()
    while data:
        if len(data) >= 16:
            n = min(255, (len(data) - 16) // 4)
            length = 16 + 4 * n
            out += bytes([(15 << 2) | slot, n]) + data[:length]
        else:
            length = len(data)
            out += bytes([((length - 1) << 2) | slot]) + data
        data = data[length:]
    return bytes(out)

def advance(units, minutes=False): return bytes([0x40 | (0x20 if minutes else 0) | (units - 1)])
def drop(slot): return bytes([0x80 | slot])
def stall(slot, stop=True): return bytes([0xC0 | (4 if stop else 0) | slot])

seeds = {}
for level in (3, 4, 5):
    seeds[f"pubsub-l{level}"] = bytes([0]) + send(0, connect("sub", level)) + send(0, subscribe(1, "a/#", 1, level)) \
        + send(1, connect("pub", level)) + send(1, publish("a/b", b"hello", 1, 7, level=level)) + send(0, ack(PUBACK, 1))
    seeds[f"qos2-l{level}"] = bytes([1]) + send(0, connect("s2", level)) + send(0, subscribe(1, "q", 2, level)) \
        + send(1, connect("p2", level)) + send(1, publish("q", b"x", 2, 3, level=level)) + send(1, ack(PUBREL, 3)) \
        + send(0, ack(PUBREC, 1)) + send(0, ack(PUBREL | 0, 1)) + send(0, ack(PUBCOMP, 1))
    seeds[f"retained-l{level}"] = bytes([2]) + send(1, connect("r", level)) + send(1, publish("r/t", b"kept", 0, retain=True, level=level)) \
        + send(2, connect("late", level)) + send(2, subscribe(5, "r/+", 0, level))
seeds["keepalive"] = bytes([0]) + send(0, connect("ka", 4, keepalive=2)) + advance(20) + send(0, PINGREQ)
seeds["will-expiry"] = bytes([0x02]) + send(0, connect("watch", 5)) + send(0, subscribe(1, "w/#", 0, 5)) \
    + send(1, connect("dying", 5, will=("w/x", "bye"), expiry=30)) + drop(1) + advance(1, True)
seeds["persistent-resume"] = bytes([0x11]) + send(0, connect("p", 4, clean=False)) + send(0, subscribe(1, "z", 1)) + drop(0) \
    + send(1, connect("q", 4)) + send(1, publish("z", b"1", 1, 1)) + send(1, publish("z", b"2", 1, 2)) \
    + send(0, connect("p", 4, clean=False)) + send(0, ack(PUBACK, 1))
seeds["takeover"] = bytes([0x01]) + send(0, connect("same", 5)) + send(1, connect("same", 5)) + send(1, DISCONNECT)
seeds["stalled"] = bytes([0x09]) + send(0, connect("slow", 4)) + send(0, subscribe(1, "s", 0)) + stall(0) \
    + send(1, connect("fast", 4)) + b"".join(send(1, publish("s", bytes([i]) * 40)) for i in range(8)) + stall(0, False)
seeds["no-connect"] = bytes([0]) + send(0, PINGREQ) + advance(20, True)
seeds["split-connect"] = bytes([0]) + b"".join(send(0, bytes([c])) for c in connect("split", 5)) + send(0, PINGREQ)

out = "Fuzz/corpus/FuzzEngine"
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f: f.write(data)
print(f"{len(seeds)} seeds in {out}")
