import MQTTCodec

/// Why a client operation failed.
public enum MQTTClientError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The broker refused the connection (CONNACK reason code, and its reason string if any).
    case connectionRefused(ReasonCode, reasonString: String?)
    /// The connection could not be opened (host unreachable, refused, TLS failure, ...).
    case unreachable(String)
    /// The broker broke the protocol (or sent something undecodable).
    case protocolViolation(String)
    /// No answer in time (CONNACK, an acknowledgement, or PINGRESP: a dead broker).
    case timeout(String)
    /// The connection closed; the broker's DISCONNECT reason code when it sent one.
    case connectionClosed(ReasonCode?)
    /// The operation needs a connection and there is none.
    case notConnected
    /// A bad argument (invalid topic, QoS, ...), refused before anything was sent.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .connectionRefused(let code, let text):
            return "Connection Refused: \(Self.refusalText(code))" + (text.map { " (\($0))" } ?? "")
        case .unreachable(let text): return text
        case .protocolViolation(let text): return "Protocol error: \(text)"
        case .timeout(let text): return "Timed out: \(text)"
        case .connectionClosed(let code): return code.map { "Connection closed by the broker: \($0)" } ?? "Connection closed"
        case .notConnected: return "Not connected"
        case .invalidArgument(let text): return text
        }
    }

    /// The wording Mosquitto's clients print for a refused connection.
    static func refusalText(_ code: ReasonCode) -> String {
        switch code {
        case .unsupportedProtocolVersion: return "unacceptable protocol version."
        case .clientIdentifierNotValid: return "identifier rejected."
        case .serverUnavailable: return "broker unavailable."
        case .badUserNameOrPassword: return "bad user name or password."
        case .notAuthorized: return "not authorised."
        default: return "\(code)."
        }
    }
}
