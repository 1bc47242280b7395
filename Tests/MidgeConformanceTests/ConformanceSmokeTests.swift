import MQTTCodec
import MidgeTestKit
import MidgeTestSupport
import XCTest

/// The support files compile and a broker answers: the base the section tests build on.
final class ConformanceSmokeTests: XCTestCase {
    func testBrokerAnswersAFreshClient() async throws {
        let broker = try startBroker()
        try await assertBrokerServes(broker, "smoke")
    }
}
