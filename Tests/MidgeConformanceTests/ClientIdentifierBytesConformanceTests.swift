import Foundation
import MQTTCodec
import MidgeClient
import MidgeTestKit
import MidgeTestSupport
import NIOCore
import XCTest

/// Client identifiers are compared byte for byte: two identifiers that are canonically equivalent
/// Unicode but different bytes ("café" precomposed and decomposed) are two clients, and neither
/// takes the other's session over.
final class ClientIdentifierBytesConformanceTests: XCTestCase {
    func testCanonicallyEquivalentClientIdentifiersAreDifferentClients() async throws {
        let broker = try startBroker()
        let (precomposed, _) = try await connectAccepted(broker, "caf\u{E9}")
        let (decomposed, _) = try await connectAccepted(broker, "cafe\u{301}")
        await expectNothing(precomposed, for: 0.3, "no takeover by a different client id")
        try await subscribe(precomposed, "cid/a", qos: .atMostOnce)
        try await subscribe(decomposed, "cid/b", qos: .atMostOnce)
        try await publish(decomposed, "cid/a", "to-a")
        let message = await expectPublish(precomposed)
        XCTAssertEqual(message?.text, "to-a")
    }
}
