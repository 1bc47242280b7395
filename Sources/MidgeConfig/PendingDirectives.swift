import MidgeBroker

// Directives Mosquitto 2.0 knows and Midge will implement in a later stage. They are refused with
// "directive 'NAME' is not supported yet" (not "Unknown configuration variable"), so a Mosquitto
// file says clearly what it still needs. Bridges keep their list beside their (empty) handler
// table: BridgeDirectives.swift.
extension MosquittoConfReader {
    static let pendingOtherDirectives: Set<String> = [
        // Authentication / access control
        "auth_plugin", "plugin",
    ]

    /// Directive-name prefixes that are not supported yet (`auth_opt_*`, `plugin_opt_*`).
    static let notSupportedYetPrefixes = ["auth_opt_", "plugin_opt_"]

    static let notSupportedYet: Set<String> =
        pendingOtherDirectives.union(pendingBridgeDirectives)

    static func isNotSupportedYet(_ name: String) -> Bool {
        notSupportedYet.contains(name) || notSupportedYetPrefixes.contains(where: { name.hasPrefix($0) })
    }
}
