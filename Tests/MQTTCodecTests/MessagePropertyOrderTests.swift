import MQTTCodec
import NIOCore
import XCTest

/// The message properties of a PUBLISH or will (Payload Format Indicator, Content Type, Response
/// Topic, Correlation Data, User Properties) are written in the order the publisher sent them,
/// Message Expiry Interval last, as Mosquitto forwards them (its test 07-will-properties): any
/// order is valid MQTT, but Mosquitto's suite and some clients compare bytes.
final class MessagePropertyOrderTests: XCTestCase {
    private func reencoded(_ content: [UInt8]) throws -> [UInt8] {
        var input = ByteBuffer(bytes: props(content))
        let properties = try Properties.read(from: &input, context: .publish)
        var output = ByteBufferAllocator().buffer(capacity: 64)
        properties.write(to: &output)
        return output.readBytes(length: output.readableBytes) ?? []
    }

    func testSendersOrderIsKept() throws {
        let user1 = [0x26] + str("key1") + str("value1"), user2 = [0x26] + str("key2") + str("value2")
        let response = [0x08] + str("response/topic"), correlation = [0x09] + str("data")
        let format: [UInt8] = [0x01, 0x01], content = [0x03] + str("application/test")
        let sent = user1 + response + correlation + format + content + user2
        XCTAssertEqual(try reencoded(sent), props(sent))
    }

    func testMessageExpiryGoesLastAndOtherPropertiesFirst() throws {
        let expiry: [UInt8] = [0x02, 0, 0, 0, 10], format: [UInt8] = [0x01, 0x00], alias: [UInt8] = [0x23, 0x00, 0x01]
        let response = [0x08] + str("r")
        // In the writer's order already (expiry aside): nothing is kept, the order is the writer's.
        XCTAssertEqual(try reencoded(format + expiry + response), props(format + response + expiry))
        // Out of order, with a non-message property between them: those come first, expiry last.
        XCTAssertEqual(try reencoded(response + expiry + alias + format), props(alias + response + format + expiry))
    }

    func testChangingAMessagePropertyDropsTheSendersOrder() throws {
        var input = ByteBuffer(bytes: props([0x08] + str("r") + [0x01, 0x01]))
        var properties = try Properties.read(from: &input, context: .publish)
        properties.contentType = "c"
        var output = ByteBufferAllocator().buffer(capacity: 32)
        properties.write(to: &output)
        XCTAssertEqual(output.readBytes(length: output.readableBytes), props([0x01, 0x01, 0x03] + str("c") + [0x08] + str("r")))
        // Changing another property keeps it.
        input = ByteBuffer(bytes: props([0x08] + str("r") + [0x01, 0x01]))
        properties = try Properties.read(from: &input, context: .publish)
        properties.topicAlias = 3
        output.clear()
        properties.write(to: &output)
        XCTAssertEqual(output.readBytes(length: output.readableBytes), props([0x23, 0x00, 0x03, 0x08] + str("r") + [0x01, 0x01]))
    }
}

/// Topic rules a server's decoder applies as Mosquitto does.
final class MosquittoTopicLimitTests: XCTestCase {
    private func publish(_ topic: String) -> [UInt8] { frame(0x30, str(topic) + props() + [0x78]) }

    func testServerDecoderRefusesTopicsWithMoreThan200Separators() throws {
        for (topic, allowed) in [(String(repeating: "/", count: 200), true), (String(repeating: "abc/", count: 199) + "d", true),
                                 (String(repeating: "/", count: 201), false), (String(repeating: "abc/", count: 201) + "d", false)] {
            var server = PacketDecoder(protocolVersion: .v5, limitsTopicLevels: true)
            var buffer = ByteBuffer(bytes: publish(topic))
            if allowed {
                XCTAssertNotNil(try server.decode(from: &buffer))
            } else {
                XCTAssertThrowsError(try server.decode(from: &buffer)) { error in
                    XCTAssertEqual((error as? MQTTCodecError)?.reasonCode, .protocolError)
                    XCTAssertEqual((error as? MQTTCodecError)?.packetType, .publish)
                }
            }
            // A client's decoder takes any topic.
            assertDecodes(publish(topic), version: .v5)
        }
    }

    func testInvalidOrOverlongFiltersAreMalformed() {
        for filter in ["", "a/#/b", "a+", "$share//a", String(repeating: "/", count: 201)] {
            assertDecodeFails(frame(0x82, u16(1) + props() + str(filter) + [0x00]), version: .v5, .malformedPacket)
            assertDecodeFails(frame(0xA2, u16(1) + props() + str(filter)), version: .v5, .malformedPacket)
            assertDecodeFails(frame(0x82, u16(1) + str(filter) + [0x00]), version: .v3_1_1, .malformedPacket)
        }
        assertDecodes(frame(0x82, u16(1) + props() + str(String(repeating: "/", count: 200)) + [0x00]), version: .v5)
    }
}
