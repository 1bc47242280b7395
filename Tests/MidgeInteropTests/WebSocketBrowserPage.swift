/// The page the browser test loads in headless Chromium: a minimal MQTT 3.1.1 client written
/// for the test (CONNECT, SUBSCRIBE at QoS 1, PUBLISH in with PUBACK) over the browser's own
/// `WebSocket`, subprotocol "mqtt", binary frames. Its state goes to `document.title` (which
/// the test reads through Chromium's DevTools HTTP endpoint) and to the page body:
/// "connecting", "connected", "subscribed (protocol mqtt)", then "received <payload>".
/// Query parameters: `port`, `topic`.
enum WebSocketBrowserPage {
    static let html = #"""
<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>connecting</title></head>
<body>
<h1>MQTT over WebSocket</h1>
<pre id="state">connecting</pre>
<pre id="messages"></pre>
<script>
"use strict";
const params = new URLSearchParams(location.search);
const topic = params.get("topic");
const encoder = new TextEncoder(), decoder = new TextDecoder();

function show(state) {
  document.title = state;
  document.getElementById("state").textContent = state;
}

function mqttString(text) {
  const bytes = encoder.encode(text);
  return [bytes.length >> 8, bytes.length & 0xff, ...bytes];
}

function packet(firstByte, body) {
  const length = [];
  let n = body.length;
  do {
    let digit = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) digit |= 0x80;
    length.push(digit);
  } while (n > 0);
  return new Uint8Array([firstByte, ...length, ...body]);
}

const ws = new WebSocket("ws://127.0.0.1:" + params.get("port") + "/mqtt", ["mqtt"]);
ws.binaryType = "arraybuffer";
let pending = new Uint8Array(0);

ws.onopen = () => {
  show("connected-socket");
  // CONNECT: protocol "MQTT" level 4, clean session, keep alive 60 s.
  ws.send(packet(0x10, [...mqttString("MQTT"), 4, 0x02, 0, 60, ...mqttString("browser-" + Date.now())]));
};
ws.onerror = () => show("error");
ws.onclose = (event) => { if (!document.title.startsWith("received")) show("closed " + event.code); };

ws.onmessage = (event) => {
  // Packets may be split across or packed into frames [MQTT-6.0.0-2]: keep a byte buffer.
  const incoming = new Uint8Array(event.data);
  const joined = new Uint8Array(pending.length + incoming.length);
  joined.set(pending);
  joined.set(incoming, pending.length);
  pending = joined;
  for (;;) {
    if (pending.length < 2) return;
    let length = 0, multiplier = 1, index = 1, byte;
    do {
      if (index >= pending.length) return;
      byte = pending[index++];
      length += (byte & 0x7f) * multiplier;
      multiplier *= 128;
    } while (byte & 0x80);
    if (pending.length < index + length) return;
    handle(pending[0], pending.subarray(index, index + length));
    pending = pending.slice(index + length);
  }
};

function handle(firstByte, body) {
  switch (firstByte >> 4) {
  case 2: // CONNACK
    if (body[1] !== 0) { show("refused " + body[1]); return; }
    show("connected");
    ws.send(packet(0x82, [0, 1, ...mqttString(topic), 1]));
    break;
  case 9: // SUBACK
    show("subscribed (protocol " + ws.protocol + ")");
    break;
  case 3: { // PUBLISH
    const qos = (firstByte >> 1) & 3;
    const topicLength = (body[0] << 8) | body[1];
    const name = decoder.decode(body.subarray(2, 2 + topicLength));
    let offset = 2 + topicLength;
    if (qos > 0) {
      ws.send(packet(0x40, [body[offset], body[offset + 1]]));
      offset += 2;
    }
    const payload = decoder.decode(body.subarray(offset));
    document.getElementById("messages").textContent += name + " " + payload + "\n";
    show("received " + payload);
    break;
  }
  }
}
</script>
</body>
</html>
"""#
}
