import Atomics
import MQTTCodec
import NIOConcurrencyHelpers
import NIOCore

/// Authentication and authorisation for one listener (or for all of them without
/// `per_listener_settings`): the loaded `password_file` and `acl_file`, replaced whole on reload
/// (SIGHUP). A reload that fails keeps the previous good state.
public final class SecurityPolicy: @unchecked Sendable {
    public enum Verdict: Equatable, Sendable {
        case accepted
        /// Unknown user or wrong password (answered as Mosquitto does: v3 return code 5, v5 0x87).
        case badCredentials
        /// Anonymous client where anonymous access is off (v3 return code 5, v5 0x87).
        case notAuthorized
    }

    public let settings: SecuritySettings
    private let allowAnonymous: Bool
    private let lock = NIOLock()
    private var passwords: PasswordFile?
    private var acl: AccessControlList?
    /// Bumped by every successful reload: cached access decisions older than it are stale.
    private let generationCounter = ManagedAtomic<Int>(0)

    /// Loads the files now (start-up): an unreadable file or a bad line throws `FILE:LINE: ...`.
    public init(settings: SecuritySettings, allowAnonymous: Bool) throws {
        self.settings = settings
        self.allowAnonymous = allowAnonymous
        var skipped: [String] = []
        passwords = try settings.passwordFile.map { try PasswordFile.load(path: $0) { skipped.append("\($0); line ignored") } }
        warningsStorage = skipped
        acl = try settings.aclFile.map { try AccessControlList.load(path: $0) }
        hasACLFlag.store(acl != nil, ordering: .relaxed)
    }

    /// The password file's lines left out at the last (re)load, for the log.
    public var warnings: [String] {
        get { lock.withLock { warningsStorage } }
        set { lock.withLock { warningsStorage = newValue } }
    }
    private var warningsStorage: [String] = []

    /// A policy with no files: anonymous access as given, every topic allowed.
    public convenience init(allowAnonymous: Bool) {
        try! self.init(settings: SecuritySettings(allowAnonymous: allowAnonymous), allowAnonymous: allowAnonymous)
    }

    public var generation: Int { generationCounter.load(ordering: .acquiring) }
    /// Whether an ACL is loaded (read on every delivery: an atomic, not the lock).
    public var hasACL: Bool { hasACLFlag.load(ordering: .relaxed) }
    private let hasACLFlag = ManagedAtomic<Bool>(false)

    /// Re-reads both files; on error keeps what it had and returns the error.
    @discardableResult
    public func reload() -> ConfigError? {
        do {
            var skipped: [String] = []
            let newPasswords = try settings.passwordFile.map { try PasswordFile.load(path: $0) { skipped.append("\($0); line ignored") } }
            warnings = skipped
            let newACL = try settings.aclFile.map { try AccessControlList.load(path: $0) }
            lock.withLock {
                passwords = newPasswords
                acl = newACL
            }
            hasACLFlag.store(newACL != nil, ordering: .relaxed)
            generationCounter.wrappingIncrement(ordering: .releasing)
            return nil
        } catch let error as ConfigError {
            return error
        } catch {
            return ConfigError(file: settings.passwordFile ?? settings.aclFile ?? "", line: 0, message: "\(error)")
        }
    }

    /// Checks CONNECT's user name and password, as Mosquitto's default check does: without a
    /// password file, `allow_anonymous false` refuses every client, user name or not; with one,
    /// a user name must be in it with the right password, and an absent or empty password never
    /// is (Mosquitto reads a zero-length password as none).
    public func authenticate(username: String?, password: ByteBuffer?) -> Verdict {
        guard let username else { return allowAnonymous ? .accepted : .notAuthorized }
        let file = lock.withLock { passwords }
        guard let file else { return allowAnonymous ? .accepted : .notAuthorized }
        guard let password, password.readableBytes > 0 else { return .badCredentials }
        return file.verify(username: username, password: Array(password.readableBytesView)) == true ? .accepted : .badCredentials
    }

    /// Whether the ACL lets this client do `operation` on `topic` (everything, without an ACL file).
    public func allows(_ operation: AccessControlList.Operation, topic: String, clientID: String, username: String?) -> Bool {
        guard let acl = lock.withLock({ acl }) else { return true }
        return acl.allows(operation, topic: topic, clientID: clientID, username: username)
    }
}

/// A client's cached ACL decisions per topic, dropped when the policy reloads. Loop-confined
/// (lives in the session), so the hot path costs one dictionary lookup per topic and operation.
struct AccessCache {
    private var generation = -1
    /// By topic bytes: a decision for one spelling must not answer for a canonically equivalent
    /// other one, which the ACL may treat differently [MQTT-4.7.3-4].
    private var decisions: [ExactText: UInt8] = [:]
    private static let readKnown: UInt8 = 1, readAllowed: UInt8 = 2, writeKnown: UInt8 = 4, writeAllowed: UInt8 = 8
    private static let limit = 10_000

    mutating func allows(_ operation: AccessControlList.Operation, topic: String, policy: SecurityPolicy, clientID: String,
                         username: String?) -> Bool {
        guard operation != .subscribe else {
            return policy.allows(operation, topic: topic, clientID: clientID, username: username)
        }
        let current = policy.generation
        if current != generation {
            generation = current
            decisions.removeAll(keepingCapacity: true)
        }
        let (known, allowed) = operation == .write ? (Self.writeKnown, Self.writeAllowed) : (Self.readKnown, Self.readAllowed)
        let bits = decisions[ExactText(topic)] ?? 0
        if bits & known != 0 { return bits & allowed != 0 }
        let verdict = policy.allows(operation, topic: topic, clientID: clientID, username: username)
        if decisions.count >= Self.limit { decisions.removeAll(keepingCapacity: true) }
        decisions[ExactText(topic)] = bits | known | (verdict ? allowed : 0)
        return verdict
    }
}
