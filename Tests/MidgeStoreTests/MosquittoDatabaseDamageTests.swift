import Foundation
import MidgeBroker
@testable import MidgeStore
import XCTest

/// The database Mosquitto wrote (MosquittoFixture), damaged: truncated at every offset, every
/// bit flipped in turn, and files that are not Mosquitto's at all. Nothing may crash; what cannot
/// be read is a StoreError with the offset where it went wrong.
final class MosquittoDatabaseDamageTests: XCTestCase {
    private var original: [UInt8] = []
    private var path = ""

    override func setUpWithError() throws {
        path = try MosquittoFixture.database().path
        original = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertGreaterThan(original.count, 200)
    }

    private func read(_ bytes: [UInt8]) -> Result<MosquittoDatabase.Import, Error> {
        Result { try MosquittoDatabase.readImport(bytes: bytes, path: "damaged.db") }
    }

    /// Mosquitto's file has no checksum and no chunk count: cut at a chunk boundary, it is a
    /// shorter valid file. Cut anywhere else, it is an error at or before the cut.
    func testTruncationAtEveryOffset() throws {
        let boundaries = Set(MosquittoDatabaseFileBuilder.chunkBoundaries(original))
        XCTAssertEqual(MosquittoDatabaseFileBuilder.chunkBoundaries(original).last, original.count, "the file ends after a whole chunk")
        let full = try read(original).get().state
        var errors = 0
        for length in 0..<original.count {
            let result = read(Array(original[0..<length]))
            if length == 0 || boundaries.contains(length) {
                guard case .success(let prefix) = result else {
                    XCTFail("cut at the chunk boundary \(length): \(result)")
                    continue
                }
                XCTAssertLessThanOrEqual(prefix.state.retained.count, full.retained.count)
                XCTAssertLessThanOrEqual(prefix.state.deliveries.count, full.deliveries.count)
                continue
            }
            switch result {
            case .success:
                XCTFail("cut at \(length) (inside a chunk or the header) read without error")
            case .failure(let error):
                guard let error = error as? StoreError, let offset = error.offset else {
                    XCTFail("cut at \(length): \(error) is not a StoreError with an offset")
                    continue
                }
                XCTAssertLessThanOrEqual(offset, length, "cut at \(length): \(error)")
                XCTAssertEqual(error.path, "damaged.db")
                errors += 1
            }
        }
        XCTAssertEqual(errors, original.count - boundaries.count, "every cut inside a chunk is an error")
    }

    /// Every single-bit flip reads or fails with a StoreError inside the file; the flips of the
    /// magic, the version and the chunk lengths always fail. (A flipped payload or topic byte
    /// cannot be noticed: Mosquitto writes no checksum.)
    func testEveryBitFlip() throws {
        var failures = 0
        for offset in 0..<original.count {
            for bit in 0..<8 {
                var bytes = original
                bytes[offset] ^= UInt8(1 << bit)
                switch read(bytes) {
                case .success:
                    break
                case .failure(let error):
                    guard let error = error as? StoreError, let at = error.offset else {
                        XCTFail("flip at \(offset) bit \(bit): \(error) is not a StoreError with an offset")
                        continue
                    }
                    XCTAssertTrue((0...original.count).contains(at), "flip at \(offset): error at \(at)")
                    failures += 1
                }
            }
        }
        XCTAssertGreaterThan(failures, 0)

        var structural = Array(0..<15) + Array(19..<23)
        for boundary in MosquittoDatabaseFileBuilder.chunkBoundaries(original).dropLast() {
            structural.append(boundary + 4)  // the high byte of each chunk length
        }
        for offset in structural {
            var bytes = original
            bytes[offset] ^= 0x80
            guard case .failure(let error) = read(bytes) else {
                XCTFail("flip at \(offset) read without error")
                continue
            }
            XCTAssertNotNil((error as? StoreError)?.offset, "\(error)")
        }
    }

    func testNotAMosquittoDatabase() throws {
        let folder = try MosquittoFixture.scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let candidates: [(String, [UInt8])] = [
            ("text.db", Array("listener 1883\nallow_anonymous true\n".utf8)),
            ("sqlite.db", Array("SQLite format 3\u{0}".utf8) + [UInt8](repeating: 0, count: 100)),
            ("short.db", [0x00, 0xB5]),
        ]
        for (name, bytes) in candidates {
            let file = folder.appendingPathComponent(name)
            try Data(bytes).write(to: file)
            XCTAssertThrowsError(try MosquittoDatabase.read(path: file.path), name) { error in
                guard let error = error as? StoreError else { return XCTFail("\(error)") }
                XCTAssertEqual(error.path, file.path)
                XCTAssertNotNil(error.offset)
                XCTAssertTrue(error.description.contains(name == "short.db" ? "ends inside" : "not a Mosquitto database"), error.description)
            }
        }
        XCTAssertThrowsError(try MosquittoDatabase.read(path: folder.appendingPathComponent("missing.db").path)) { error in
            XCTAssertTrue((error as? StoreError)?.message.contains("cannot open") == true, "\(error)")
        }
        XCTAssertThrowsError(try MosquittoDatabase.read(path: folder.path)) { error in
            XCTAssertTrue((error as? StoreError)?.message.contains("not a regular file") == true, "\(error)")
        }
    }

    /// The same file in format 5 (Mosquitto 1.6.0's CLIENT chunk: no listener port, no
    /// username) reads to the same state, without usernames.
    func testFormat5OfTheSameFile() throws {
        var converted = Array(original[0..<19]) + MosquittoDatabaseFileBuilder.be32(5)
        let boundaries = MosquittoDatabaseFileBuilder.chunkBoundaries(original)
        for (start, end) in zip(boundaries, boundaries.dropFirst()) {
            let type = original[(start)..<(start + 4)].reduce(0) { $0 << 8 | Int($1) }
            guard type == 6 else {
                converted += original[start..<end]
                continue
            }
            // CLIENT: 16 bytes common to both formats, then (format 6 only) listener port,
            // username length, padding; then the client id and (format 6 only) the username.
            let body = Array(original[(start + 8)..<end])
            let idLength = Int(body[14]) << 8 | Int(body[15])
            let newBody = Array(body[0..<16]) + Array(body[24..<(24 + idLength)])
            converted += MosquittoDatabaseFileBuilder.be32(6) + MosquittoDatabaseFileBuilder.be32(UInt32(newBody.count)) + newBody
        }
        let v5 = try read(converted).get()
        XCTAssertEqual(v5.formatVersion, 5)
        var expected = try read(original).get().state
        for index in expected.sessions.indices { expected.sessions[index].username = nil }
        XCTAssertEqual(v5.state, expected)
    }
}
