import Foundation
import MQTTCodec
import MidgeBroker
import NIOCore

// How the model's values are kept in SQLite columns, both ways: message ids and delivery keys as
// INTEGER (the bits of the UInt64), payloads as BLOB, v5 properties as their MQTT wire bytes
// (property length, then the properties: `Properties.write(to:)`; NULL when there are none),
// subscription identifiers as text ("1,7"). Reading back checks every value: a bad one is a
// damaged store, reported with its table and row.
enum StoreColumns {
    /// Thrown while reading a row: what is wrong with it (the store adds its path).
    struct BadValue: Error {
        var message: String
    }

    static func unsigned(_ value: Int64) -> UInt64 { UInt64(bitPattern: value) }

    static func buffer(_ data: Data?) -> ByteBuffer {
        guard let data, !data.isEmpty else { return ByteBuffer() }
        var buffer = ByteBufferAllocator().buffer(capacity: data.count)
        buffer.writeBytes(data)
        return buffer
    }

    static func blob(_ properties: Properties) -> ByteBuffer? {
        if properties.isEmpty { return nil }
        var buffer = ByteBufferAllocator().buffer(capacity: properties.encodedLengthWithPrefix)
        properties.write(to: &buffer)
        return buffer
    }

    /// `context`: `.publish` for a message's properties, `.will` for a will's.
    static func properties(_ data: Data?, context: PropertyContext, column: String) throws -> Properties {
        guard let data, !data.isEmpty else { return .none }
        var buffer = buffer(data)
        do {
            let properties = try Properties.read(from: &buffer, context: context)
            guard buffer.readableBytes == 0 else {
                throw BadValue(message: "\(column): \(buffer.readableBytes) bytes after the properties")
            }
            return properties
        } catch let error as BadValue {
            throw error
        } catch {
            throw BadValue(message: "\(column): \(error)")
        }
    }

    static func text(_ subscriptionIDs: [Int]) -> String? {
        subscriptionIDs.isEmpty ? nil : subscriptionIDs.map(String.init).joined(separator: ",")
    }

    static func subscriptionIDs(_ text: String?) throws -> [Int] {
        guard let text, !text.isEmpty else { return [] }
        return try text.split(separator: ",", omittingEmptySubsequences: false).map { part in
            guard let id = Int(part), id > 0 else { throw BadValue(message: "subscription_ids: \"\(text)\"") }
            return id
        }
    }

    static func qos(_ value: Int64, column: String) throws -> QoS {
        guard let qos = UInt8(exactly: value).flatMap(QoS.init(rawValue:)) else {
            throw BadValue(message: "\(column): \(value) is not a QoS")
        }
        return qos
    }

    static func stage(_ value: Int64) throws -> OutboundStage {
        guard let stage = UInt8(exactly: value).flatMap(OutboundStage.init(rawValue:)) else {
            throw BadValue(message: "stage: \(value) is not a delivery stage")
        }
        return stage
    }

    static func retainHandling(_ value: Int64) throws -> RetainHandling {
        guard let handling = UInt8(exactly: value).flatMap(RetainHandling.init(rawValue:)) else {
            throw BadValue(message: "retain_handling: \(value)")
        }
        return handling
    }

    static func exact<T: FixedWidthInteger>(_ value: Int64, _: T.Type, column: String) throws -> T {
        guard let exact = T(exactly: value) else { throw BadValue(message: "\(column): \(value) is out of range") }
        return exact
    }
}
