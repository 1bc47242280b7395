import Foundation
import MidgeEngineHarness
import XCTest

/// Every input of the engine fuzzer's committed corpus (seeds and the inputs that once crashed
/// it, Fuzz/corpus/FuzzEngine) replays through the fuzz driver in an ordinary test run: a
/// regression of a fixed crash fails here, without libFuzzer.
final class FuzzCorpusReplayTests: XCTestCase {
    func testEngineCorpusReplaysWithoutATrap() throws {
        let corpus = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/corpus/FuzzEngine")
        let files = try FileManager.default.contentsOfDirectory(atPath: corpus.path).sorted()
        XCTAssertGreaterThanOrEqual(files.count, 10, "the engine corpus is missing")
        for name in files {
            let input = try [UInt8](Data(contentsOf: corpus.appendingPathComponent(name)))
            EngineFuzzDriver.run(input)
        }
    }
}
