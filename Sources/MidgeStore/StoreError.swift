/// Why a store or a Mosquitto database could not be read or opened: the file, where in it
/// (a byte offset, when known) and what is wrong. Start-up stops with its description.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var offset: Int?
    public var message: String

    public init(path: String, offset: Int? = nil, message: String) {
        self.path = path
        self.offset = offset
        self.message = message
    }

    public var description: String {
        if let offset { return "\(path): at byte \(offset): \(message)" }
        return "\(path): \(message)"
    }
}
