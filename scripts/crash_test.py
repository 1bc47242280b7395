#!/usr/bin/env python3
"""Crash test for a broker's persistence: every message whose PUBACK (QoS 1) or PUBREC (QoS 2)
a publisher received must survive `kill -9` of the broker.

Usage: crash_test.py --broker BINARY [--rounds N] [--graceful] [options]
(scripts/crash-test.sh ROUNDS [BROKER] is the usual entry point; docs/persistence.md,
"Crash test", describes what is checked.)

The broker is any binary that reads a Mosquitto configuration with `BINARY -c FILE`. Each round
starts it on the same persistence folder, loads it with publishers for a random 0.5-3 s while
persistent subscribers receive (some going offline and back), kills it with SIGKILL (SIGTERM with
--graceful) at a random moment, and restarts it; the subscribers reconnect to their sessions.
After the last round a final restart and drain, then the checks:
  * every acknowledged message reached every persistent subscriber whose subscription matched
    (a shared group: one of its members): effective QoS 1 at least once, QoS 2 exactly once;
  * no QoS 2 message (acknowledged or not) was delivered twice to one subscriber (or a group);
  * every reconnect found its session (session present);
  * the retained message of each retained topic is its last acknowledged update or a later one
    that was attempted.
Publishers are raw sockets (MQTT 3.1.1 and 5.0), so a QoS 2 message counts as acknowledged when
its PUBREC arrives (--qos2-ack pubcomp: only once its PUBCOMP arrived); subscribers are paho-mqtt
clients kept alive across rounds. --no-shared leaves the shared-subscription group out.

Exit status: 0 no violation, 1 violations, 2 the broker could not be started or run (log tail
printed), 3 the run exceeded --max-seconds.
"""

import argparse
import collections
import json
import os
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

try:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    from paho.mqtt.subscribeoptions import SubscribeOptions
except ImportError:  # pragma: no cover
    sys.stderr.write("crash_test.py needs paho-mqtt 2.x: python3 -m pip install 'paho-mqtt>=2'\n")
    sys.exit(2)

HOST = "127.0.0.1"
now = time.monotonic

# --------------------------------------------------------------------------------------------
# Test topology
# --------------------------------------------------------------------------------------------

# Topics the ordinary publishers write to (no retain).
LOAD_TOPICS = ["ct/a/1", "ct/a/2", "ct/b/1", "ct/b/x/y", "ct/c/1", "ct/s/1", "ct/s/2"]
# Topics of retained updates (one publisher per round owns them, so their order is known).
RETAINED_TOPICS = ["ct/r/1", "ct/r/2", "ct/r/3"]

# Persistent subscribers: (client id, protocol, [(filter, QoS)], flaky). No subscriber has two
# overlapping filters, so each message matches at most one subscription per subscriber.
SUBSCRIBERS = [
    ("crash-v3-online", 4, [("ct/a/+", 1), ("ct/r/#", 2)], False),
    ("crash-v3-flaky", 4, [("ct/#", 2)], True),
    ("crash-v5-online", 5, [("ct/a/1", 2), ("ct/b/#", 1)], False),
    ("crash-v5-flaky", 5, [("ct/+/1", 1)], True),
    ("crash-share-1", 5, [("$share/g/ct/s/#", 2)], False),
    ("crash-share-2", 5, [("$share/g/ct/s/#", 2)], True),
]
SESSION_EXPIRY = 1_000_000  # seconds, MQTT 5 subscribers

# Publishers per round: (name, protocol, QoS).
PUBLISHERS = [("p1", 4, 1), ("p2", 5, 1), ("p3", 4, 2), ("p4", 5, 2)]

PROTO_NAME = {4: "MQTT 3.1.1", 5: "MQTT 5.0"}


def topic_matches(flt, topic):
    """MQTT filter matching ($share/GROUP/ stripped by the caller)."""
    f = flt.split("/")
    t = topic.split("/")
    for i, part in enumerate(f):
        if part == "#":
            return True
        if i >= len(t):
            return False
        if part != "+" and part != t[i]:
            return False
    return len(f) == len(t)


def split_share(flt):
    if flt.startswith("$share/"):
        _, group, rest = flt.split("/", 2)
        return group, rest
    return None, flt


# --------------------------------------------------------------------------------------------
# Raw MQTT encoding for the publishers
# --------------------------------------------------------------------------------------------

class ProtocolError(Exception):
    pass


def enc_varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def enc_str(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def mk_packet(first, body):
    return bytes([first]) + enc_varint(len(body)) + body


def connect_packet(client_id, proto, keepalive=60):
    # Clean session / clean start, and (MQTT 5) no properties: Session Expiry Interval 0.
    vh = enc_str("MQTT") + bytes([proto, 0x02]) + struct.pack("!H", keepalive)
    if proto == 5:
        vh += b"\x00"
    return mk_packet(0x10, vh + enc_str(client_id))


def publish_packet(topic, payload, qos, retain, pid, proto):
    body = enc_str(topic) + struct.pack("!H", pid)
    if proto == 5:
        body += b"\x00"
    return mk_packet(0x30 | (qos << 1) | (1 if retain else 0), body + payload)


def read_varint(buf, pos):
    mult, val = 1, 0
    for _ in range(4):
        if pos >= len(buf):
            return None, pos
        b = buf[pos]
        pos += 1
        val += (b & 0x7F) * mult
        if not b & 0x80:
            return val, pos
        mult *= 128
    raise ProtocolError("malformed variable byte integer")


_PROP_FIXED = {**{k: 1 for k in (0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A)},
               **{k: 2 for k in (0x13, 0x21, 0x22, 0x23)},
               **{k: 4 for k in (0x02, 0x11, 0x18, 0x27)}}


def parse_properties(body, pos):
    """Returns ({id: value}, end) for an MQTT 5 property block at pos."""
    length, pos = read_varint(body, pos)
    if length is None:
        raise ProtocolError("truncated properties")
    end = pos + length
    props = {}
    while pos < end:
        pid = body[pos]
        pos += 1
        if pid in _PROP_FIXED:
            n = _PROP_FIXED[pid]
            props[pid] = int.from_bytes(body[pos:pos + n], "big")
            pos += n
        elif pid == 0x0B:
            props[pid], pos = read_varint(body, pos)
        elif pid in (0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F, 0x09, 0x16):
            n = struct.unpack_from("!H", body, pos)[0]
            props[pid] = bytes(body[pos + 2:pos + 2 + n])
            pos += 2 + n
        elif pid == 0x26:
            for _ in range(2):
                n = struct.unpack_from("!H", body, pos)[0]
                pos += 2 + n
        else:
            raise ProtocolError(f"unknown property 0x{pid:02x}")
    return props, end


class PacketReader:
    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data
        out = []
        while len(self.buf) >= 2:
            rl, pos = read_varint(self.buf, 1)
            if rl is None or len(self.buf) < pos + rl:
                break
            out.append((self.buf[0], bytes(self.buf[pos:pos + rl])))
            del self.buf[:pos + rl]
        return out


# --------------------------------------------------------------------------------------------
# Messages and publishers
# --------------------------------------------------------------------------------------------

class Msg:
    __slots__ = ("id", "topic", "qos", "retain", "round", "publisher", "proto", "rseq",
                 "sent_at", "acked", "acked_at", "reason", "completed", "refused")

    def __init__(self, mid, topic, qos, retain, rnd, publisher, proto, rseq, sent_at):
        self.id, self.topic, self.qos, self.retain = mid, topic, qos, retain
        self.round, self.publisher, self.proto, self.rseq = rnd, publisher, proto, rseq
        self.sent_at = sent_at
        self.acked = False      # PUBACK (QoS 1) / PUBREC (QoS 2) with a success reason code
        self.acked_at = None
        self.reason = None
        self.completed = False  # QoS 2: PUBCOMP received
        self.refused = False    # MQTT 5 reason code >= 0x80

    def counts(self, qos2_ack):
        """Acknowledged for the checks: PUBACK; PUBREC (or, with --qos2-ack pubcomp, PUBCOMP)."""
        return self.acked and (self.qos == 1 or qos2_ack == "pubrec" or self.completed)

    def describe(self):
        ack = "unacknowledged"
        if self.acked:
            ack = ("PUBACK" if self.qos == 1 else "PUBREC") + f" at +{self.acked_at:.3f}s"
            if self.qos == 2:
                ack += ", PUBCOMP received" if self.completed else ", no PUBCOMP"
        kind = "retained " if self.retain else ""
        return (f"{kind}QoS {self.qos} to {self.topic} from {self.publisher} ({PROTO_NAME[self.proto]}), "
                f"round {self.round}, {ack}")


class Publisher(threading.Thread):
    """A raw-socket publisher with a window of in-flight messages, sending at `rate` msg/s until
    its connection dies or it is told to stop."""

    def __init__(self, run, rnd, name, proto, qos_list, topics, retain, rate, window, t0):
        super().__init__(name=f"pub-{name}", daemon=True)
        self.run_, self.rnd, self.pname, self.proto = run, rnd, name, proto
        self.qos_list, self.topics, self.retain = qos_list, topics, retain
        self.interval = 1.0 / rate
        self.window = window
        self.t0 = t0
        self.client_id = f"crash-pub-r{rnd}-{name}-{run.run_tag}"
        self.stop_evt = threading.Event()
        self.frozen = False
        self.msgs = []
        self.end_reason = "running"
        self.seq = 0

    def _next_message(self, pid):
        self.seq += 1
        mid = f"r{self.rnd}-{self.pname}-{self.seq:06d}"
        qos = self.qos_list[(self.seq - 1) % len(self.qos_list)]
        if self.retain:
            topic = self.topics[(self.seq - 1) % len(self.topics)]
            rseq = self.run_.next_retained_seq(topic)
        else:
            topic = random.choice(self.topics)
            rseq = None
        m = Msg(mid, topic, qos, self.retain, self.rnd, self.pname, self.proto, rseq, now() - self.t0)
        return m, publish_packet(topic, mid.encode(), qos, self.retain, pid, self.proto)

    def run(self):
        sock = None
        try:
            sock = socket.create_connection((HOST, self.run_.port), timeout=5)
            sock.settimeout(5)
            sock.sendall(connect_packet(self.client_id, self.proto))
            reader = PacketReader()
            deadline = now() + 5
            connack = None
            while connack is None:
                if now() > deadline:
                    raise ProtocolError("no CONNACK within 5 s")
                data = sock.recv(4096)
                if not data:
                    raise ProtocolError("connection closed before CONNACK")
                pkts = reader.feed(data)
                if pkts:
                    connack = pkts[0]
            ptype, body = connack
            if ptype != 0x20 or len(body) < 2 or body[1] != 0:
                raise ProtocolError(f"CONNACK refused: type 0x{ptype:02x} body {body.hex()}")
            window = self.window
            if self.proto == 5 and len(body) > 2:
                props, _ = parse_properties(body, 2)
                if 0x21 in props:
                    window = min(window, props[0x21])
            inflight = {}  # packet id -> Msg
            next_pid = 1
            next_t = now()
            while not self.stop_evt.is_set():
                t = now()
                while len(inflight) < window and t >= next_t and not self.stop_evt.is_set():
                    while next_pid in inflight:
                        next_pid = next_pid % 65535 + 1
                    m, pkt = self._next_message(next_pid)
                    inflight[next_pid] = m
                    self.msgs.append(m)
                    self.run_.register(m)
                    sock.sendall(pkt)
                    next_pid = next_pid % 65535 + 1
                    next_t = max(next_t + self.interval, t - 0.5)
                wait = 0.02 if len(inflight) >= window else max(0.0, min(0.02, next_t - now()))
                r, _, _ = select.select([sock], [], [], wait)
                if not r:
                    continue
                data = sock.recv(65536)
                if not data:
                    self.end_reason = "connection closed by the broker"
                    return
                for ptype, body in reader.feed(data):
                    self._handle(ptype, body, inflight, sock)
            self.end_reason = "stopped"
        except (OSError, ProtocolError) as e:
            self.end_reason = f"{type(e).__name__}: {e}"
        finally:
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass

    def _handle(self, ptype, body, inflight, sock):
        kind = ptype & 0xF0
        if kind in (0x40, 0x50, 0x70):
            pid = struct.unpack_from("!H", body, 0)[0]
            reason = body[2] if len(body) > 2 else 0
            m = inflight.get(pid)
            if m is None or self.frozen:
                return
            if kind == 0x40 or kind == 0x50:
                expected = 1 if kind == 0x40 else 2
                if m.qos != expected or m.acked:
                    raise ProtocolError(f"unexpected {'PUBACK' if kind == 0x40 else 'PUBREC'} for packet id {pid}")
                m.reason = reason
                if reason < 0x80:
                    m.acked = True
                    m.acked_at = now() - self.t0
                    if kind == 0x50:
                        sock.sendall(mk_packet(0x62, struct.pack("!H", pid)))
                        return  # stays in flight until PUBCOMP
                else:
                    m.refused = True
                del inflight[pid]
            else:  # PUBCOMP
                if m.qos == 2 and m.acked:
                    m.completed = True
                    del inflight[pid]
        elif kind == 0xE0:
            raise ProtocolError(f"DISCONNECT from the broker: {body.hex()}")


# --------------------------------------------------------------------------------------------
# Persistent subscribers (paho, one thread each driving client.loop() by hand)
# --------------------------------------------------------------------------------------------

class Subscriber:
    def __init__(self, run, cid, proto, filters, flaky):
        self.run_, self.cid, self.proto, self.flaky = run, cid, proto, flaky
        self.filters = filters           # [(filter, requested QoS)]
        self.granted = {}                # filter -> granted QoS (or reason code >= 0x80)
        self.recv = collections.defaultdict(list)  # payload -> [(qos, dup, retain, phase)]
        self.want_online = True
        self.sock_open = False
        self.connected = False
        self.connect_started = 0.0
        self.connack_at = 0.0
        self.ever_connected = False
        self.subscribed = False
        self.sub_mid = None
        self.connects = 0
        self.stop = False
        self.errors = []
        kwargs = dict(callback_api_version=CallbackAPIVersion.VERSION2, client_id=cid,
                      protocol=mqtt.MQTTv5 if proto == 5 else mqtt.MQTTv311)
        if proto == 4:
            kwargs["clean_session"] = False
        self.client = mqtt.Client(**kwargs)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        if proto == 5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY
            self.client.connect_async(HOST, run.port, keepalive=30, clean_start=False, properties=props)
        else:
            self.client.connect_async(HOST, run.port, keepalive=30)
        self.thread = threading.Thread(target=self._main, name=f"sub-{cid}", daemon=True)

    # paho callbacks (run inside client.loop(), in this subscriber's thread)
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.errors.append(f"CONNACK refused: {reason_code}")
            return
        self.connected = True
        self.connects += 1
        self.connack_at = now()
        self.run_.activity()
        if not self.ever_connected:
            self.ever_connected = True
            self._subscribe()
        elif not flags.session_present:
            self.run_.session_lost(self)
            self._subscribe()

    def _subscribe(self):
        self.subscribed = False
        if self.proto == 5:
            subs = [(f, SubscribeOptions(qos=q)) for f, q in self.filters]
        else:
            subs = [(f, q) for f, q in self.filters]
        rc, mid = self.client.subscribe(subs)
        self.sub_mid = mid

    def _on_subscribe(self, client, userdata, mid, reason_code_list, properties):
        if mid != self.sub_mid:
            return
        for (f, _), rc in zip(self.filters, reason_code_list):
            self.granted[f] = rc.value
        self.subscribed = True
        self.run_.activity()

    def _on_message(self, client, userdata, message):
        try:
            payload = message.payload.decode("utf-8", "replace")
            self.recv[payload].append((message.qos, bool(message.dup), bool(message.retain),
                                       self.run_.phase, message.topic))
            self.run_.activity()
        except Exception as e:  # never let a callback kill the loop
            self.errors.append(f"on_message: {e!r}")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected = False

    # the thread
    def _connect(self):
        self.connect_started = now()
        self.client.reconnect()   # the parameters were set by connect_async() in __init__
        self.sock_open = True

    def _main(self):
        while not self.stop:
            try:
                if self.want_online and not self.sock_open:
                    try:
                        self._connect()
                    except (OSError, ValueError):
                        self.sock_open = False
                        time.sleep(0.1)
                        continue
                if not self.sock_open:
                    time.sleep(0.05)
                    continue
                rc = self.client.loop(timeout=0.05)
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    self.sock_open = False
                    self.connected = False
                    time.sleep(0.05)
                    continue
                if not self.connected and now() - self.connect_started > 10:
                    self.errors.append("no CONNACK within 10 s; reconnecting")
                    self._close()
                elif not self.want_online and self.connected:
                    self._close()
            except Exception as e:  # keep the subscriber alive whatever happens
                self.errors.append(f"loop: {e!r}")
                self.sock_open = False
                self.connected = False
                time.sleep(0.1)
        self._close()

    def _close(self):
        if not self.sock_open:
            return
        try:
            self.client.disconnect()
            deadline = now() + 2
            while now() < deadline:
                if self.client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS or self.client.socket() is None:
                    break
        except Exception:
            pass
        self.sock_open = False
        self.connected = False

    def ready_since(self, t):
        """Connected with a CONNACK after t and subscribed."""
        return self.connected and self.connack_at >= t and self.subscribed

    def delivered(self, payload):
        """Deliveries counted for checks: those without the RETAIN flag (a retained copy sent on a
        re-subscription is not a delivery of the live message)."""
        return [d for d in self.recv.get(payload, ()) if not d[2]]


# --------------------------------------------------------------------------------------------
# The broker process
# --------------------------------------------------------------------------------------------

class BrokerError(Exception):
    pass


def log_tail(path, n=40):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:]) or "(empty log)"
    except OSError as e:
        return f"(cannot read {path}: {e})"


class Broker:
    def __init__(self, binary, conf, port, log_dir, start_timeout):
        self.binary, self.conf, self.port = binary, conf, port
        self.log_dir, self.start_timeout = log_dir, start_timeout
        self.proc = None
        self.log_path = None

    def start(self, label):
        self.log_path = os.path.join(self.log_dir, f"{label}.log")
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen([self.binary, "-c", self.conf], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            raise BrokerError(f"cannot start {self.binary}: {e}")
        finally:
            log.close()
        deadline = now() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise BrokerError(f"broker exited with status {self.proc.returncode} during start-up "
                                  f"({label}); log tail ({self.log_path}):\n{log_tail(self.log_path)}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return
            except OSError:
                pass
            if now() > deadline:
                self.kill()
                raise BrokerError(f"broker did not accept connections on {HOST}:{self.port} within "
                                  f"{self.start_timeout} s ({label}); log tail ({self.log_path}):\n"
                                  f"{log_tail(self.log_path)}")
            time.sleep(0.05)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)   # the broker's own process group
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def terminate(self, timeout=30):
        """SIGTERM and wait; returns a note when the broker had to be killed or exited badly."""
        if not self.alive():
            return f"broker had already exited (status {self.proc.returncode})" if self.proc else None
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return f"broker did not exit within {timeout} s of SIGTERM; killed"
        return None if rc == 0 else f"broker exited with status {rc} after SIGTERM"


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------

def check_alive(broker, when):
    if not broker.alive():
        raise BrokerError(f"broker died by itself during {when} (status {broker.proc.returncode}); "
                          f"log tail ({broker.log_path}):\n{log_tail(broker.log_path)}")


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Run:
    def __init__(self, args):
        self.args = args
        self.run_tag = f"{os.getpid()}{random.randrange(1000):03d}"
        self.port = args.port or free_port()
        self.lock = threading.Lock()
        self.messages = {}   # id -> Msg, in sending order
        self.retained_seq = collections.Counter()
        self.last_activity = now()
        self.phase = "start"
        self.session_losses = []  # (client id, phase)
        self.notes = []
        self.rounds = []

    def register(self, m):
        with self.lock:
            self.messages[m.id] = m

    def next_retained_seq(self, topic):
        with self.lock:
            self.retained_seq[topic] += 1
            return self.retained_seq[topic]

    def activity(self):
        self.last_activity = now()

    def session_lost(self, sub):
        with self.lock:
            self.session_losses.append((sub.cid, self.phase))


def wait_until(cond, timeout, step=0.05):
    deadline = now() + timeout
    while now() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def reconnect_all(run, subs, since, timeout, label):
    for s in subs:
        s.want_online = True
    ok = wait_until(lambda: all(s.ready_since(since) for s in subs), timeout)
    if not ok:
        missing = [s.cid for s in subs if not s.ready_since(since)]
        run.notes.append(f"{label}: subscribers not reconnected within {timeout} s: {', '.join(missing)}")
    return ok


def drain(run, quiet, timeout, label):
    """Waits until no delivery or connection event for `quiet` seconds (at most `timeout`)."""
    start = now()
    run.activity()
    while now() - run.last_activity < quiet:
        if now() - start > timeout:
            run.notes.append(f"{label}: deliveries still arriving after {timeout} s; stopped waiting")
            break
        time.sleep(0.05)
    return now() - start


def flaky_driver(subs, stop_evt):
    """Takes flaky subscribers offline and back at random moments until stop_evt."""
    flaky = [s for s in subs if s.flaky]
    nxt = {s.cid: now() + random.uniform(0.1, 1.0) for s in flaky}
    while not stop_evt.wait(0.02):
        for s in flaky:
            if now() >= nxt[s.cid]:
                s.want_online = not s.want_online
                nxt[s.cid] = now() + random.uniform(0.2, 1.2)


def read_retained(run, timeout=10.0, quiet=1.5):
    """A fresh clean client subscribes to ct/r/# and collects the retained messages."""
    got = {}
    state = {"subscribed": False, "last": now(), "error": None}
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                    client_id=f"crash-retain-check-{run.run_tag}", protocol=mqtt.MQTTv5)

    def on_connect(client, userdata, flags, rc, props):
        if rc.is_failure:
            state["error"] = f"CONNACK {rc}"
        else:
            client.subscribe("ct/r/#", qos=1)

    def on_subscribe(client, userdata, mid, rcs, props):
        state["subscribed"] = True
        state["last"] = now()

    def on_message(client, userdata, msg):
        if msg.retain:
            got[msg.topic] = msg.payload.decode("utf-8", "replace")
        state["last"] = now()

    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    try:
        c.connect(HOST, run.port, keepalive=30, clean_start=True)
    except OSError as e:
        return None, f"cannot connect: {e}"
    deadline = now() + timeout
    while now() < deadline and not state["error"]:
        if c.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
            state["error"] = "connection lost"
            break
        if state["subscribed"] and now() - state["last"] >= quiet:
            break
    try:
        c.disconnect()
        c.loop(timeout=0.2)
    except Exception:
        pass
    if not state["subscribed"] and not state["error"]:
        state["error"] = "no SUBACK"
    return got, state["error"]


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------

def evaluate(run, subs, retained):
    """Returns (violations, stats, acknowledged messages with a lost delivery per round)."""
    violations = []   # (round or None, category, text)
    stats = collections.Counter()
    by_id = {s.cid: s for s in subs}

    # Subscriptions: plain ones per subscriber, shared ones per group.
    plain = []                       # (sub, filter, granted qos)
    groups = collections.defaultdict(list)  # (group, filter) -> [(sub, granted qos)]
    for s in subs:
        for f, q in s.filters:
            g = s.granted.get(f)
            if g is None or g >= 0x80:
                violations.append((None, "SUBSCRIBE", f"{s.cid}: subscription {f} QoS {q} was not granted "
                                   f"(SUBACK {'missing' if g is None else hex(g)}); it is not checked"))
                continue
            if g != q:
                violations.append((None, "SUBSCRIBE", f"{s.cid}: {f} granted QoS {g}, requested {q}"))
            group, real = split_share(f)
            if group:
                groups[(group, real)].append((s, g))
            else:
                plain.append((s, f, g))

    for cid, phase in run.session_losses:
        violations.append((None, "SESSION", f"{cid}: session lost (CONNACK session present = 0 on reconnect, "
                                           f"{phase}); it subscribed again"))

    lost_msgs = collections.Counter()   # round -> acknowledged messages with a loss

    def acked(m):
        return m.counts(run.args.qos2_ack)

    for m in run.messages.values():
        lost_here = False
        for s, f, g in plain:
            if not topic_matches(f, m.topic):
                continue
            eff = min(m.qos, g)
            n = len(s.delivered(m.id))
            if acked(m):
                stats["expected deliveries"] += 1
            if n == 0 and acked(m):
                lost_here = True
                stats[f"lost deliveries to {s.cid}"] += 1
                extra = ""
                if s.recv.get(m.id):
                    extra = " (only a retained copy arrived, on a re-subscription)"
                violations.append((m.round, "LOST", f"{m.id} ({m.describe()}) -> {s.cid} (filter {f}, QoS {g}): "
                                   f"expected {'exactly once' if eff == 2 else 'at least once'}, got 0{extra}"))
            elif n > 1 and eff == 2:
                violations.append((m.round, "QOS2-DUPLICATE",
                                   f"{m.id} ({m.describe()}) -> {s.cid} (filter {f}, QoS {g}): "
                                   f"expected exactly once, got {n}"))
            elif n > 1:
                stats["QoS 1 duplicates"] += n - 1
        for (group, f), members in groups.items():
            if not topic_matches(f, m.topic):
                continue
            eff = min(m.qos, min(g for _, g in members))
            counts = {s.cid: len(s.delivered(m.id)) for s, _ in members}
            total = sum(counts.values())
            shown = ", ".join(f"{c}: {n}" for c, n in counts.items())
            if acked(m):
                stats["expected deliveries"] += 1
            if total == 0 and acked(m):
                lost_here = True
                stats[f"lost deliveries to $share/{group}/{f}"] += 1
                violations.append((m.round, "LOST", f"{m.id} ({m.describe()}) -> shared group $share/{group}/{f}: "
                                   f"expected one member {'exactly once' if eff == 2 else 'at least once'}, "
                                   f"got none ({shown})"))
            elif eff == 2 and total > 1:
                violations.append((m.round, "QOS2-DUPLICATE",
                                   f"{m.id} ({m.describe()}) -> shared group $share/{group}/{f}: expected exactly "
                                   f"one member exactly once, got {shown}"))
            elif total > 1:
                if sum(1 for n in counts.values() if n) > 1:
                    stats["QoS 1 shared deliveries to both members"] += 1
                stats["QoS 1 duplicates"] += total - 1
        if lost_here:
            lost_msgs[m.round] += 1
            if m.qos == 2 and not m.completed:
                stats["lost messages acknowledged by PUBREC without PUBCOMP"] += 1

    # Deliveries nobody should have had.
    for s in subs:
        for payload, ds in s.recv.items():
            m = run.messages.get(payload)
            live = [d for d in ds if not d[2]]
            stats["retained copies on subscription (ignored)"] += len(ds) - len(live)
            if m is None:
                violations.append((None, "UNEXPECTED", f"{s.cid} received unknown payload {payload!r} "
                                   f"on {ds[0][4]}"))
            elif live and not any(topic_matches(split_share(f)[1], m.topic) for f, _ in s.filters):
                violations.append((m.round, "UNEXPECTED", f"{s.cid} received {m.id} on {m.topic}, which none "
                                   f"of its filters match"))

    # Retained messages.
    got, err = retained
    if err:
        violations.append((None, "RETAINED", f"could not read the retained messages: {err}"))
    else:
        for topic in RETAINED_TOPICS:
            updates = [m for m in run.messages.values() if m.retain and m.topic == topic]
            acked = [m for m in updates if m.counts(run.args.qos2_ack)]
            last = max(acked, key=lambda m: m.rseq) if acked else None
            payload = got.get(topic)
            found = run.messages.get(payload) if payload is not None else None
            want = (f"the last acknowledged update {last.id} (#{last.rseq}) or a later attempted one"
                    if last else "nothing or an attempted update")
            if payload is None:
                if last:
                    violations.append((last.round, "RETAINED", f"{topic}: no retained message; expected {want}"))
            elif found is None or found.topic != topic or not found.retain:
                violations.append((None, "RETAINED", f"{topic}: retained payload {payload!r} was never published "
                                   f"to it; expected {want}"))
            elif last and found.rseq < last.rseq:
                violations.append((last.round, "RETAINED", f"{topic}: retained {found.id} (#{found.rseq}); "
                                   f"expected {want}"))
        stats["retained topics checked"] = len(RETAINED_TOPICS)
    return violations, stats, lost_msgs


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def write_config(path, args, data_dir):
    lines = [
        "# Written by scripts/crash_test.py",
        f"listener {args.port_used} {HOST}",
        "allow_anonymous true",
        "persistence true",
        f"persistence_location {data_dir}/",
        "max_inflight_messages 100",
        "max_queued_messages 0",
        "log_dest stderr",
    ] + list(args.conf_line or [])
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker", required=True, help="broker binary, started as BROKER -c FILE")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--graceful", action="store_true", help="stop the broker with SIGTERM instead of SIGKILL")
    ap.add_argument("--seed", type=int, help="random seed (default: random, printed)")
    ap.add_argument("--rate", type=float, default=150.0, help="messages per second per publisher (default 150)")
    ap.add_argument("--window", type=int, default=20, help="in-flight messages per publisher (default 20)")
    ap.add_argument("--min-load", type=float, default=0.5, help="shortest load before the kill, s (default 0.5)")
    ap.add_argument("--max-load", type=float, default=3.0, help="longest load before the kill, s (default 3)")
    ap.add_argument("--quiet", type=float, default=2.0, help="drain until this long without a delivery, s (default 2)")
    ap.add_argument("--drain-timeout", type=float, default=60.0, help="longest drain, s (default 60)")
    ap.add_argument("--start-timeout", type=float, default=20.0, help="broker start-up limit, s (default 20)")
    ap.add_argument("--stop-timeout", type=float, default=30.0, help="limit for exit after SIGTERM, s (default 30)")
    ap.add_argument("--max-seconds", type=float, help="whole-run limit, s (default 120 per round + 120)")
    ap.add_argument("--port", type=int, help="port (default: a free one)")
    ap.add_argument("--out", help="run folder (default: a new folder under $TMPDIR)")
    ap.add_argument("--keep", action="store_true", help="keep the run folder even when the run passes")
    ap.add_argument("--conf-line", action="append", help="extra configuration line (repeatable)")
    ap.add_argument("--qos2-ack", choices=["pubrec", "pubcomp"], default="pubrec",
                    help="when a QoS 2 message counts as acknowledged (default pubrec, the promise)")
    ap.add_argument("--no-shared", action="store_true", help="leave out the $share/g/ct/s/# group")
    ap.add_argument("--show", type=int, default=25, help="violations printed per category (default 25; all are in the run folder)")
    args = ap.parse_args()

    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    broker_bin = os.path.abspath(args.broker) if os.sep in args.broker else (shutil.which(args.broker) or args.broker)
    if not (os.path.isfile(broker_bin) and os.access(broker_bin, os.X_OK)):
        print(f"crash-test: ERROR broker binary {args.broker} not found or not executable")
        return 2

    out = args.out or tempfile.mkdtemp(prefix="midge-crash-")
    os.makedirs(out, exist_ok=True)
    out = os.path.abspath(out)
    data_dir = os.path.join(out, "data")
    log_dir = os.path.join(out, "logs")
    os.makedirs(data_dir, exist_ok=True)
    os.makedirs(log_dir, exist_ok=True)
    if os.listdir(data_dir):
        print(f"crash-test: ERROR {data_dir} is not empty: every run starts from an empty persistence folder")
        return 2
    # A broker started as root may drop to another user (Mosquitto: `mosquitto`): let it reach
    # and write the persistence folder.
    os.chmod(out, 0o755)
    os.chmod(data_dir, 0o777)

    run = Run(args)
    args.port_used = run.port
    conf = os.path.join(out, "broker.conf")
    write_config(conf, args, data_dir)
    broker = Broker(broker_bin, conf, run.port, log_dir, args.start_timeout)
    mode = "SIGTERM (--graceful)" if args.graceful else "SIGKILL"
    print(f"crash-test: {args.rounds} rounds against {broker_bin}, stop by {mode}, port {run.port}, "
          f"seed {seed}, folder {out}", flush=True)

    max_seconds = args.max_seconds or 120 * args.rounds + 120

    def watchdog():
        time.sleep(max_seconds)
        print(f"crash-test: ERROR run exceeded {max_seconds:.0f} s; broker killed; folder {out}", flush=True)
        broker.kill()
        os._exit(3)
    threading.Thread(target=watchdog, daemon=True).start()

    subs = [Subscriber(run, cid, proto, filters, flaky) for cid, proto, filters, flaky in SUBSCRIBERS
            if not (args.no_shared and any(f.startswith("$share/") for f, _ in filters))]
    t_run = now()
    round_logs = {}   # round -> [log labels that concern it]
    try:
        for r in range(1, args.rounds + 1):
            t_round = now()
            label = f"round-{r}"
            run.phase = f"start of round {r}"
            since = now()
            broker.start(label)
            round_logs.setdefault(r, []).append(label)
            if r > 1:
                round_logs[r - 1].append(label)   # the restart that recovers round r-1
            if r == 1:
                for s in subs:
                    s.thread.start()
                sleepers = []
            else:
                # Some flaky subscribers stay offline for this whole round: their queued messages
                # must survive one more crash of a broker that recovered them.
                sleepers = [s for s in subs if s.flaky and random.random() < 0.3]
            for s in sleepers:
                s.want_online = False
            awake = [s for s in subs if s not in sleepers]
            reconnect_all(run, awake, since, 20, f"round {r}")
            drained = drain(run, args.quiet, args.drain_timeout, f"round {r}") if r > 1 else 0.0
            check_alive(broker, f"the drain of round {r}")

            # Load, then stop the broker at a random moment of it.
            run.phase = f"load of round {r}"
            load = random.uniform(args.min_load, args.max_load)
            t0 = now()
            pubs = [Publisher(run, r, name, proto, [qos], LOAD_TOPICS, False, args.rate, args.window, t0)
                    for name, proto, qos in PUBLISHERS]
            pubs.append(Publisher(run, r, "pr", 4 if r % 2 else 5, [1, 2], RETAINED_TOPICS, True,
                                  max(5.0, args.rate / 5), 1, t0))
            flaky_stop = threading.Event()
            flaky_thread = threading.Thread(target=flaky_driver, args=(awake, flaky_stop), daemon=True)
            for p in pubs:
                p.start()
            flaky_thread.start()
            time.sleep(max(0.0, t0 + load - now()))
            alive_at_stop = broker.alive()
            stop_note = None
            if args.graceful:
                stop_note = broker.terminate(args.stop_timeout)
            else:
                broker.kill()
            run.phase = f"after the stop of round {r}"
            flaky_stop.set()
            for p in pubs:
                p.stop_evt.set()
            for p in pubs:
                p.join(5)
                if p.is_alive():
                    p.frozen = True
                    run.notes.append(f"round {r}: publisher {p.pname} did not stop within 5 s")
            flaky_thread.join(2)
            if not alive_at_stop:
                raise BrokerError(f"broker died by itself during the load of round {r} (status "
                                  f"{broker.proc.returncode}); log tail ({broker.log_path}):\n{log_tail(broker.log_path)}")
            if stop_note:
                run.notes.append(f"round {r}: {stop_note}")
            for p in pubs:
                if not p.msgs:
                    run.notes.append(f"round {r}: publisher {p.pname} sent nothing ({p.end_reason})")
            ms = [m for p in pubs for m in p.msgs]

            def acked(m):
                return m.counts(args.qos2_ack)
            info = {
                "round": r, "load_s": round(load, 3), "drain_s": round(drained, 2),
                "attempted": len(ms), "acked": sum(acked(m) for m in ms),
                "acked_qos1": sum(acked(m) and m.qos == 1 for m in ms),
                "acked_qos2": sum(acked(m) and m.qos == 2 for m in ms),
                "pubcomp": sum(m.completed for m in ms),
                "refused": sum(m.refused for m in ms),
                "publishers_ended": {p.pname: p.end_reason for p in pubs},
            }
            info["round_s"] = round(now() - t_round, 2)
            run.rounds.append(info)
            info["offline_all_round"] = [s.cid for s in sleepers]
            print(f"  round {r}: load {load:.2f} s, {info['attempted']} sent, {info['acked']} acknowledged "
                  f"({info['acked_qos1']} QoS 1, {info['acked_qos2']} QoS 2; {info['pubcomp']} PUBCOMP), "
                  f"{info['refused']} refused, drain before load {drained:.1f} s, round {info['round_s']:.1f} s",
                  flush=True)

        # Final restart and drain.
        run.phase = "final restart"
        since = now()
        broker.start("final")
        round_logs[args.rounds].append("final")
        reconnect_all(run, subs, since, 20, "final restart")
        final_drain = drain(run, args.quiet, args.drain_timeout, "final drain")
        check_alive(broker, "the final drain")
        run.phase = "final check"
        retained = read_retained(run)
        for s in subs:
            s.stop = True
        for s in subs:
            s.thread.join(5)
        note = broker.terminate(args.stop_timeout)
        if note:
            run.notes.append(f"final stop: {note}")
    except BrokerError as e:
        broker.kill()
        for s in subs:
            s.stop = True
        print(f"crash-test: ERROR {e}", flush=True)
        print(f"crash-test: ERROR broker failure; folder {out}", flush=True)
        return 2
    finally:
        broker.kill()

    violations, stats, lost_msgs = evaluate(run, subs, retained)
    for s in subs:
        for e in s.errors[:5]:
            run.notes.append(f"subscriber {s.cid}: {e}")

    # Report.
    elapsed = now() - t_run
    by_cat = collections.defaultdict(list)
    for rnd, cat, text in violations:
        by_cat[cat].append(text)
    acked_total = sum(i["acked"] for i in run.rounds)
    lost_deliveries = len(by_cat.get("LOST", []))
    lost_messages = sum(lost_msgs.values())
    report = {
        "broker": broker_bin, "graceful": args.graceful, "seed": seed, "rounds": run.rounds,
        "final_drain_s": round(final_drain, 2), "elapsed_s": round(elapsed, 1),
        "acked_total": acked_total, "lost_messages": lost_messages, "lost_deliveries": lost_deliveries,
        "lost_messages_by_round": dict(lost_msgs), "stats": dict(stats),
        "violations_by_category": {c: len(v) for c, v in by_cat.items()}, "notes": run.notes,
        "retained_read": retained[0],
    }
    for note in run.notes:
        print(f"  note: {note}")
    for cat, texts in sorted(by_cat.items()):
        print(f"  {cat}: {len(texts)} violation(s)")
        for t in texts[:args.show]:
            print(f"    {t}")
        if len(texts) > args.show:
            print(f"    ... {len(texts) - args.show} more in {os.path.join(out, 'violations.txt')}")
    print("  per round (acknowledged / with a lost delivery): " + ", ".join(
        f"r{i['round']} {i['acked']}/{lost_msgs.get(i['round'], 0)}" for i in run.rounds))
    for k in sorted(stats):
        print(f"  {k}: {stats[k]}")

    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=2, default=str)
    failed = bool(violations)
    if failed:
        with open(os.path.join(out, "violations.txt"), "w") as f:
            for rnd, cat, text in violations:
                f.write(f"{cat}\t{'round ' + str(rnd) if rnd else '-'}\t{text}\n")
        # Keep the logs of the rounds that failed (the round and the restart that recovered it);
        # violations tied to no round keep every log.
        keep = set()
        bad_rounds = {rnd for rnd, _, _ in violations}
        for rnd in bad_rounds:
            keep.update(round_logs.get(rnd, []) if rnd else [lbl for v in round_logs.values() for lbl in v])
        for name in os.listdir(log_dir):
            if name[:-4] not in keep:
                os.remove(os.path.join(log_dir, name))
        where = f"logs of failing rounds in {log_dir}"
    elif args.keep:
        where = f"folder {out}"
    else:
        shutil.rmtree(out, ignore_errors=True)
        where = "folder removed"

    verdict = "FAIL" if failed else "PASS"
    cats = ", ".join(f"{len(v)} {c}" for c, v in sorted(by_cat.items())) or "no violation"
    per_round = "/".join(str(i["acked"]) for i in run.rounds)
    print(f"crash-test: {verdict} {os.path.basename(broker_bin)} ({'SIGTERM' if args.graceful else 'kill -9'}), "
          f"{args.rounds} rounds, {acked_total} acknowledged messages ({per_round}), {lost_messages} lost "
          f"({lost_deliveries} lost deliveries), {stats.get('QoS 1 duplicates', 0)} QoS 1 duplicates, {cats}; "
          f"{elapsed:.0f} s; {where}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
