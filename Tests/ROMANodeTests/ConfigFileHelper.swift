import Foundation
@testable import ROMANode

/// `text` written to a temporary config file named `*.<ext>`, applied to a default NodeConfig.
func nodeConfig(fromFile text: String, ext: String) throws -> NodeConfig {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("romacfg-\(UUID().uuidString).\(ext)").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    var c = NodeConfig()
    try c.apply(configFile: path)
    return c
}
