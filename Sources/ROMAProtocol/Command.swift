/// The commands this server understands. `name` is the lower-case wire spelling.
public enum Command: UInt8, CaseIterable, Sendable {
    // Retrieval and storage (plugin_storage, R3.9) plus memcached's extras.
    case get, gets, set, add, replace, append, prepend, cas, delete, incr, decr
    case setExpt, getExpt, touch
    // Session and information (R3.14–R3.17).
    case version, whoami, nodelist, hashlist, defhash, quit, stat, stats, verbosity, flushAll
    case createhash, deletehash, mounthash, umounthash
    case balse, shutdownSelf
    // Routing introspection.
    case mklhash, routingdump, getKeyInfo
    // Safecopy and snapshot (R7.10, R7.11).
    case setStorageStatus, setGuiRunSnapshot, setGuiLastSnapshot

    /// The wire name.
    public var name: String {
        switch self {
        case .setExpt: return "set_expt"
        case .getExpt: return "get_expt"
        case .flushAll: return "flush_all"
        case .shutdownSelf: return "shutdown_self"
        case .getKeyInfo: return "get_key_info"
        case .setStorageStatus: return "set_storage_status"
        case .setGuiRunSnapshot: return "set_gui_run_snapshot"
        case .setGuiLastSnapshot: return "set_gui_last_snapshot"
        default: return String(describing: self)
        }
    }

    /// Storage commands carry a data block after the line.
    public var hasDataBlock: Bool {
        switch self {
        case .set, .add, .replace, .append, .prepend, .cas: return true
        default: return false
        }
    }

    /// Table used to match token 0 (most frequent first).
    static let table: [(bytes: [UInt8], command: Command)] =
        [Command.get, .set, .gets, .delete, .incr, .decr, .add, .replace, .append, .prepend, .cas]
            .map { (Array($0.name.utf8), $0) }
            + Command.allCases.filter { !$0.isHot }.map { (Array($0.name.utf8), $0) }

    private var isHot: Bool {
        switch self {
        case .get, .set, .gets, .delete, .incr, .decr, .add, .replace, .append, .prepend, .cas: return true
        default: return false
        }
    }

    /// Matches a command token case-insensitively (R3.1).
    public static func match(_ token: UnsafeRawBufferPointer) -> Command? {
        outer: for entry in table where entry.bytes.count == token.count {
            for i in 0..<token.count {
                var c = token[i]
                if c >= 0x41 && c <= 0x5a { c |= 0x20 }
                if c != entry.bytes[i] { continue outer }
            }
            return entry.command
        }
        return nil
    }
}
