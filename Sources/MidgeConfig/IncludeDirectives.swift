import Foundation
import MidgeBroker

// Files: reading a configuration file with Mosquitto's checks, and `include_dir`, which reads
// the `*.conf` files of a directory in Mosquitto's order, each starting with the default listener
// as its current listener (only in the main file, as Mosquitto).
extension MosquittoConfReader {
    static let includeDirectives: [String: DirectiveHandler] = [
        "include_dir": { r, line, scope in try r.includeDirectory(line, level: scope.level) },
    ]

    mutating func includeDirectory(_ line: MosquittoConfLine, level: Int) throws {
        let dir = try line.freeText()
        guard level == 0 else {
            // Mosquitto only processes include_dir in the main configuration file.
            warn(line, "include_dir is only processed in the main configuration file; ignored.")
            return
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue,
              let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else {
            throw line.error("Unable to open include_dir '\(dir)'.")
        }
        let files = names
            .filter { $0.utf8.count > 5 && $0.hasSuffix(".conf") }
            .sorted(by: ConfigFileParser.mosquittoIncludeOrder)
        for name in files {
            let path = dir.hasSuffix("/") ? dir + name : dir + "/" + name
            let bytes = try ConfigFileParser.readConfigFile(path, errorFile: line.file, errorLine: line.number)
            try parseFile(bytes: bytes, fileName: path, level: level + 1)
        }
    }
}

extension ConfigFileParser {
    /// Mosquitto's include_dir ordering (src/conf_includedir.c `scmp_p`): compare ASCII letters
    /// case-insensitively first, and only if equal, by byte value (so "A.conf" < "a.conf" < "B.conf").
    static func mosquittoIncludeOrder(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var i = 0
        while i < x.count && i < y.count {
            let ux = asciiUpper(x[i]), uy = asciiUpper(y[i])
            if ux != uy { return ux < uy }
            if x[i] != y[i] { return x[i] < y[i] }
            i += 1
        }
        return x.count < y.count
    }

    private static func asciiUpper(_ c: UInt8) -> UInt8 {
        (c >= 0x61 && c <= 0x7A) ? c - 0x20 : c
    }

    /// Reads a config file, with Mosquitto's checks (not a directory, readable).
    static func readConfigFile(_ path: String, errorFile: String, errorLine: Int) throws -> [UInt8] {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            throw ConfigError(file: errorFile, line: errorLine, message: "Config file \(path) is a directory.")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: errorFile, line: errorLine, message: "Unable to open config file \(path).")
        }
        return [UInt8](data)
    }
}
