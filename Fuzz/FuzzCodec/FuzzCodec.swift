// libFuzzer target for the MQTT codec (docs/fuzzing.md). No `main`: libFuzzer provides it and
// calls `LLVMFuzzerTestOneInput` once per input.
//
// Input layout (see `Selector`):
//   byte 0  bits 0-1  protocol level the decoder starts with: 0 = none (server side, the CONNECT
//                     decides; 3.1.1 rules until then), 1 = 3 (3.1), 2 = 4 (3.1.1), 3 = 5
//           bits 2-4  how the stream is cut into reads (`SplitMode`)
//           bits 5-6  maximum packet size: 0 = none, 1 = 16, 2 = 128, 3 = 1024 bytes
//           bit  7    stop after the first packet (the `body` closure returns false)
//   byte 1           parameter of the split (chunk size, cut position or random seed)
//   bytes 2...       the TCP byte stream
//
// Invariants checked (a violation traps; a thrown MQTTCodecError is a normal outcome):
//  1. the decoder throws nothing but MQTTCodecError;
//  2. the stream decoder, whatever the cut into reads, yields the same packets (equal and
//     byte-identical when re-encoded) and the same error as a plain PacketDecoder over the
//     whole stream, and ends on the same protocol version;
//  3. each packet consumes exactly its fixed header + remaining length bytes;
//  4. every decoded packet re-encodes (PacketEncoder, for the protocol version it was decoded
//     in) to bytes whose remaining length matches the body, which decode again, consuming all
//     of them, to an equal packet that re-encodes to the same bytes (encoding is canonical);
//  5. what the decoder promises to reject never comes out: PUBLISH QoS>0 with packet id 0,
//     QoS 0 with DUP, wildcards in a topic name, an empty topic without a topic alias;
//     SUBSCRIBE / UNSUBSCRIBE without filters; No Local on a shared subscription (v5), with
//     "shared" as the broker decides it (`Topic.parseShared`, byte-wise);
//  6. stopping after the first packet drops the rest: a PINGREQ sent next decodes alone.

import MQTTCodec
import NIOCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// SwiftPM links an executable target with `--defsym main=<Target>_main` on Linux (so tests can
// import it): that symbol starts libFuzzer's driver, the `main` libFuzzer would otherwise be.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@_cdecl("FuzzCodec_main")
public func fuzzCodecMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        guard let data else { return 0 }
        return fuzz(data, size)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 2 else { return 0 }
    let input = UnsafeBufferPointer(start: data, count: size)
    let selector = Selector(input[0], input[1])
    let stream = Array(input[2...])
    checkStream(stream, selector)
    return 0
}

// MARK: Input selector

enum SplitMode: UInt8 {
    case whole = 0          // one read
    case bytewise = 1       // one byte per read
    case fixedChunks = 2    // reads of (parameter + 1) bytes
    case twoReads = 3       // cut once at parameter % (count + 1)
    case randomSmall = 4    // reads of 1...16 bytes, sizes from a generator seeded by the parameter
    case randomLarge = 5    // reads of 1...256 bytes
    case randomWithEmpty = 6 // reads of 0...8 bytes (empty reads included)
    case threeReads = 7     // cuts at two positions drawn from the parameter
}

struct Selector {
    var version: ProtocolVersion?
    var split: SplitMode
    var maximumPacketSize: Int
    var stopAfterFirst: Bool
    var parameter: UInt8

    init(_ first: UInt8, _ second: UInt8) {
        switch first & 0x03 {
        case 1: version = .v3_1
        case 2: version = .v3_1_1
        case 3: version = .v5
        default: version = nil
        }
        split = SplitMode(rawValue: (first >> 2) & 0x07)!
        maximumPacketSize = [Int.max, 16, 128, 1024][Int((first >> 5) & 0x03)]
        stopAfterFirst = first & 0x80 != 0
        parameter = second
    }

    /// The lengths of the successive reads (summing to `count`).
    func reads(count: Int) -> [Int] {
        var state = UInt32(parameter) &* 2_654_435_761 | 1
        func next(_ bound: Int) -> Int {  // xorshift32
            state ^= state << 13; state ^= state >> 17; state ^= state << 5
            return Int(state % UInt32(bound))
        }
        func chunks(_ size: () -> Int) -> [Int] {
            var out: [Int] = []
            var left = count
            while left > 0 { let n = min(size(), left); out.append(n); left -= n }
            return out
        }
        switch split {
        case .whole: return [count]
        case .bytewise: return Array(repeating: 1, count: count)
        case .fixedChunks: return chunks { Int(parameter) + 1 }
        case .twoReads:
            let cut = Int(parameter) % (count + 1)
            return [cut, count - cut]
        case .randomSmall: return chunks { 1 + next(16) }
        case .randomLarge: return chunks { 1 + next(256) }
        case .randomWithEmpty: return chunks { next(9) } + [0]
        case .threeReads:
            let a = Int(parameter & 0x0F) * (count + 1) / 16
            let b = Int(parameter >> 4) * (count + 1) / 16
            let (low, high) = (min(a, b), max(a, b))
            return [low, high - low, count - high]
        }
    }
}

// MARK: Checks

/// What decoding a stream gave: the packets, each with the protocol version it was decoded in,
/// the error that ended it (if any) and the decoder's final protocol version.
struct Outcome {
    var packets: [(packet: MQTTPacket, version: ProtocolVersion)] = []
    var error: MQTTCodecError?
    var finalVersion: ProtocolVersion?
}

func violation(_ what: String, _ stream: [UInt8], _ selector: Selector, file: StaticString = #file, line: UInt = #line) -> Never {
    fatalError("FuzzCodec invariant violated: \(what)\n  selector: version \(selector.version.map { "\($0)" } ?? "none"), split \(selector.split), parameter \(selector.parameter), max \(selector.maximumPacketSize), stop \(selector.stopAfterFirst)\n  stream: \(hex(stream.prefix(512)))", file: file, line: line)
}

func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    bytes.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: " ")
}

/// The version a packet is (re-)encoded in: a CONNECT carries its own; anything else the
/// decoder's (3.1.1 rules before any CONNECT on a server-side decoder).
func versionAfter(_ packet: MQTTPacket, current: ProtocolVersion?) -> ProtocolVersion? {
    if case .connect(let connect) = packet { return connect.protocolVersion }
    return current
}

/// Reference: a plain PacketDecoder over the whole stream in one buffer.
func decodeWhole(_ stream: [UInt8], _ selector: Selector) -> Outcome {
    var decoder = PacketDecoder(protocolVersion: selector.version, maximumPacketSize: selector.maximumPacketSize)
    var buffer = ByteBuffer(bytes: stream)
    var outcome = Outcome()
    var version = selector.version
    do {
        while true {
            let before = buffer.readerIndex
            guard let packet = try decoder.decode(from: &buffer) else {
                if buffer.readerIndex != before { violation("decode returned nil but consumed bytes", stream, selector) }
                break
            }
            // Invariant 3: exactly the fixed header plus the remaining length were consumed.
            guard let size = frameSize(stream, at: before) else {
                violation("decoded a packet whose fixed header does not parse", stream, selector)
            }
            if buffer.readerIndex - before != size {
                violation("decoder consumed \(buffer.readerIndex - before) bytes for a \(size)-byte \(packet.type)", stream, selector)
            }
            if size > selector.maximumPacketSize {
                violation("\(size)-byte packet accepted over the maximum packet size \(selector.maximumPacketSize)", stream, selector)
            }
            version = versionAfter(packet, current: version)
            outcome.packets.append((packet, version ?? .v3_1_1))
            if selector.stopAfterFirst { break }
        }
    } catch let error as MQTTCodecError {
        outcome.error = error
    } catch {
        violation("decoder threw a non-MQTTCodecError \(error)", stream, selector)
    }
    outcome.finalVersion = decoder.protocolVersion
    if outcome.error == nil && decoder.protocolVersion != version {
        violation("decoder ends on version \(String(describing: decoder.protocolVersion)), expected \(String(describing: version))", stream, selector)
    }
    return outcome
}

/// The stream decoder fed the stream in the selector's reads.
func decodeSplit(_ stream: [UInt8], _ selector: Selector) -> Outcome {
    var decoder = PacketStreamDecoder(PacketDecoder(protocolVersion: selector.version, maximumPacketSize: selector.maximumPacketSize))
    var outcome = Outcome()
    var version = selector.version
    var offset = 0
    var stopped = false
    do {
        for length in selector.reads(count: stream.count) {
            let read = ByteBuffer(bytes: stream[offset..<offset + length])
            offset += length
            try decoder.decode(read) { packet in
                version = versionAfter(packet, current: version)
                outcome.packets.append((packet, version ?? .v3_1_1))
                if selector.stopAfterFirst { stopped = true; return false }
                return true
            }
            if stopped { break }
        }
    } catch let error as MQTTCodecError {
        outcome.error = error
    } catch {
        violation("stream decoder threw a non-MQTTCodecError \(error)", stream, selector)
    }
    outcome.finalVersion = decoder.decoder.protocolVersion
    if stopped {
        // Invariant 6: the rest of the stream was dropped; the next read starts afresh.
        var after: [MQTTPacket] = []
        do {
            try decoder.decode(ByteBuffer(bytes: [0xC0, 0x00])) { after.append($0); return true }
        } catch {
            violation("PINGREQ after a stop threw \(error)", stream, selector)
        }
        if after != [.pingreq] { violation("after a stop, PINGREQ decoded as \(after)", stream, selector) }
    }
    return outcome
}

/// Total size (header + remaining length) of the packet starting at `offset`, parsed here
/// independently of the codec; nil when the header is incomplete or invalid.
func frameSize(_ stream: [UInt8], at offset: Int) -> Int? {
    var value = 0, multiplier = 1, index = offset + 1
    for _ in 0..<4 {
        guard index < stream.count else { return nil }
        let byte = stream[index]
        index += 1
        value += Int(byte & 0x7F) * multiplier
        if byte & 0x80 == 0 { return index - offset + value }
        multiplier *= 128
    }
    return nil
}

func encoded(_ packet: MQTTPacket, _ version: ProtocolVersion) -> [UInt8] {
    Array(PacketEncoder.encode(packet, version: version).readableBytesView)
}

func checkStream(_ stream: [UInt8], _ selector: Selector) {
    let whole = decodeWhole(stream, selector)
    let split = decodeSplit(stream, selector)

    // Invariant 2: the cut into reads changes nothing.
    if whole.packets.count != split.packets.count {
        violation("\(whole.packets.count) packets in one buffer, \(split.packets.count) through the stream decoder (\(split.error.map { "\($0)" } ?? "no error"))", stream, selector)
    }
    for (index, (a, b)) in zip(whole.packets, split.packets).enumerated() {
        if a.packet != b.packet || a.version != b.version || encoded(a.packet, a.version) != encoded(b.packet, b.version) {
            violation("packet \(index) differs: \(a.packet) vs \(b.packet)", stream, selector)
        }
    }
    if whole.error != split.error {
        violation("errors differ: \(String(describing: whole.error)) vs \(String(describing: split.error))", stream, selector)
    }
    if whole.finalVersion != split.finalVersion {
        violation("final versions differ: \(String(describing: whole.finalVersion)) vs \(String(describing: split.finalVersion))", stream, selector)
    }

    for (packet, version) in whole.packets {
        checkRules(packet, version, stream, selector)
        checkRoundTrip(packet, version, stream, selector)
    }
}

/// Invariant 4: encode → decode → equal → encode → same bytes.
func checkRoundTrip(_ packet: MQTTPacket, _ version: ProtocolVersion, _ stream: [UInt8], _ selector: Selector) {
    let bytes = encoded(packet, version)
    guard let size = frameSize(bytes, at: 0), size == bytes.count else {
        violation("\(packet.type) re-encoded in \(version) to \(bytes.count) bytes whose fixed header says \(String(describing: frameSize(bytes, at: 0))): \(hex(bytes.prefix(64)))", stream, selector)
    }
    if case .publish(let publish) = packet, PacketEncoder.publishPacketSize(publish, version: version) != bytes.count {
        violation("publishPacketSize \(PacketEncoder.publishPacketSize(publish, version: version)) != encoded size \(bytes.count)", stream, selector)
    }
    var isConnect = false
    if case .connect = packet { isConnect = true }
    var decoder = PacketDecoder(protocolVersion: isConnect ? nil : version)
    var buffer = ByteBuffer(bytes: bytes)
    let again: MQTTPacket?
    do {
        again = try decoder.decode(from: &buffer)
    } catch {
        violation("re-encoded \(packet.type) (\(version)) does not decode: \(error); packet \(packet); bytes \(hex(bytes.prefix(64)))", stream, selector)
    }
    guard let again else { violation("re-encoded \(packet.type) (\(version)) is incomplete: \(hex(bytes.prefix(64)))", stream, selector) }
    if buffer.readableBytes != 0 { violation("re-encoded \(packet.type) left \(buffer.readableBytes) bytes", stream, selector) }
    if again != packet {
        violation("round trip in \(version) changed the packet:\n  decoded   \(packet)\n  round trip \(again)\n  bytes \(hex(bytes.prefix(64)))", stream, selector)
    }
    let bytesAgain = encoded(again, version)
    if bytesAgain != bytes {
        violation("encoding is not canonical in \(version): \(hex(bytes.prefix(64))) then \(hex(bytesAgain.prefix(64)))", stream, selector)
    }
    if isConnect && decoder.protocolVersion != version {
        violation("re-decoded CONNECT set version \(String(describing: decoder.protocolVersion)), expected \(version)", stream, selector)
    }
}

/// Invariant 5: rules the decoder enforces, checked on what it let through.
func checkRules(_ packet: MQTTPacket, _ version: ProtocolVersion, _ stream: [UInt8], _ selector: Selector) {
    let wildcard: (UInt8) -> Bool = { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "#") }
    switch packet {
    case .publish(let publish):
        if publish.qos != .atMostOnce && publish.packetID == 0 { violation("QoS \(publish.qos) PUBLISH with packet id 0", stream, selector) }
        if publish.qos == .atMostOnce && publish.dup { violation("QoS 0 PUBLISH with DUP", stream, selector) }
        if publish.topic.utf8.contains(where: wildcard) { violation("PUBLISH topic with a wildcard", stream, selector) }
        if publish.topic.isEmpty && (version != .v5 || publish.properties.topicAlias == nil) {
            violation("empty PUBLISH topic without a topic alias", stream, selector)
        }
    case .connect(let connect):
        if let will = connect.will, !Topic.isValidName(will.topic) { violation("invalid will topic", stream, selector) }
    case .subscribe(let subscribe):
        if subscribe.subscriptions.isEmpty { violation("SUBSCRIBE without filters", stream, selector) }
        if version == .v5 {
            for subscription in subscribe.subscriptions where subscription.options.noLocal {
                if Topic.parseShared(subscription.filter) != nil {
                    violation("No Local accepted on '\(subscription.filter)' (utf8 \(hex(subscription.filter.utf8))), a shared subscription for the broker (Topic.parseShared) [MQTT-3.8.3-4]", stream, selector)
                }
            }
        }
    case .unsubscribe(let unsubscribe):
        if unsubscribe.filters.isEmpty { violation("UNSUBSCRIBE without filters", stream, selector) }
    default:
        break
    }
}
