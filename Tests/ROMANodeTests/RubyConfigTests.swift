import Foundation
import Testing
@testable import ROMANode
import ROMAStorage

/// ROMA's own `config.rb` as a romad config file (RubyConfig + NodeConfig.apply(configFile:)).
@Suite struct RubyConfigTests {
    /// The settings part of the config.rb ROMA 1.3's mkconfig writes (as recorded in
    /// ../shared/reference/ruby-roma-setup/config.rb), with its comments, `require`, modules and
    /// the `get_stat` method body.
    static let mkconfigStyle = """
        require 'roma/storage/tc_storage'

        module Roma

          module Config
            VERSION = "1.3.0"

            # check the port number
            DEFAULT_PORT = 12000 # default
            DEFAULT_NAME = 'ROMA'
            DEFAULT_LOST_ACTION = :no_action
            AUTO_RECOVER = false
            ROUTING_FAIL_CNT_THRESHOLD = 15
            ROUTING_FAIL_CNT_GAP = 0
            LOG_SHIFT_SIZE = 1024 * 1024 * 10
            LOG_LEVEL = :info
            RTTABLE_PATH = '/var/roma/routing'
            CONNECTION_CONTINUOUS_LIMIT = '200:30:300'
            CONNECTION_DESCRIPTOR_TABLE_SIZE = 4096
            STORAGE_CLASS = Roma::Storage::TCStorage
            STORAGE_DIVNUM = 10
            STORAGE_PATH = '/var/roma/data'
            STORAGE_OPTION = 'bnum=5000000#xmsiz=268435456#opts=l'
            STORAGE_DELMARK_EXPTIME = 60 * 60 * 24 * 5
            STORAGE_CLEAN_UP_INTERVAL = 60 * 5
            DATACOPY_STREAM_COPY_WAIT_PARAM = 0.001
            PLUGIN_FILES = ['plugin_storage.rb',
                            'plugin_alist.rb']
            REDUNDANT_ZREDUNDANT_SIZE = 0

            def self.get_stat
              ret = {}
              ret['config.DEFAULT_LOST_ACTION'] = DEFAULT_LOST_ACTION
              ret['config.STORAGE_DELMARK_EXPTIME'] = STORAGE_DELMARK_EXPTIME
              ret
            end
          end
        end

        """

    private func write(_ text: String, ext: String = "rb") throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rubycfg-\(UUID().uuidString).\(ext)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func config(_ text: String, ext: String = "rb") throws -> NodeConfig { try nodeConfig(fromFile: text, ext: ext) }

    @Test func mkconfigFileSetsWhatRomadUses() throws {
        let c = try config(Self.mkconfigStyle)
        #expect(c.port == 12000)
        #expect(c.name == "ROMA")
        #expect(c.lostAction == "no_action")
        #expect(c.autoRecover == false)
        #expect(c.failThreshold == 15)
        #expect(c.failGap == 0)
        #expect(c.logLevel == "info")
        #expect(c.routingPath == "/var/roma/routing")
        #expect(c.storagePath == "/var/roma/data")
        #expect(c.divnum == 10)
        #expect(c.delmarkExptime == 432_000)
        #expect(c.cleanUpInterval == 300)
        #expect(c.zredundantSize == 0)
        guard case .tokyoCabinet(let o) = c.storage else {
            Issue.record("TCStorage must select the TokyoCabinet engine")
            return
        }
        #expect(o == (try TCOptions(parsing: "bnum=5000000#xmsiz=268435456#opts=l")))
    }

    @Test func assignmentsAreReadWithTheirLinesAndValues() {
        let a = RubyConfig.assignments(in: Self.mkconfigStyle)
        let byName = Dictionary(a.map { ($0.name, $0) }, uniquingKeysWith: { x, _ in x })
        #expect(byName["VERSION"]?.value == .string("1.3.0"))
        #expect(byName["VERSION"]?.line == 6)
        #expect(byName["DEFAULT_PORT"]?.value == .int(12000))
        #expect(byName["DEFAULT_LOST_ACTION"]?.value == .symbol("no_action"))
        #expect(byName["STORAGE_CLASS"]?.value == .constant("Roma::Storage::TCStorage"))
        #expect(byName["LOG_SHIFT_SIZE"]?.value == .int(10_485_760))
        #expect(byName["DATACOPY_STREAM_COPY_WAIT_PARAM"]?.value == .float(0.001))
        #expect(byName["PLUGIN_FILES"]?.value == .array([.string("plugin_storage.rb"), .string("plugin_alist.rb")]))
        // The `#` inside the quoted STORAGE_OPTION is not a comment.
        #expect(byName["STORAGE_OPTION"]?.value == .string("bnum=5000000#xmsiz=268435456#opts=l"))
        // The body of get_stat holds no constant assignment.
        #expect(a.filter { $0.name == "DEFAULT_LOST_ACTION" }.count == 1)
        #expect(byName["REDUNDANT_ZREDUNDANT_SIZE"]?.line == 29)
    }

    @Test func expressionsAndLiterals() {
        func v(_ src: String) -> RubyConfig.Value? { RubyConfig.assignments(in: "X = \(src)\n").first?.value }
        #expect(v("(2 + 3) * 4 - -1") == .int(21))
        #expect(v("7 / 2") == .int(3))
        #expect(v("-7 / 2") == .int(-4))
        #expect(v("1_000_000") == .int(1_000_000))
        #expect(v("1.5 * 2") == .float(3.0))
        #expect(v("'it\\'s'") == .string("it's"))
        #expect(v("\"a\\tb\"") == .string("a\tb"))
        #expect(v("'a' + 'b'") == .string("ab"))
        #expect(v("true") == .bool(true))
        #expect(v("nil") == .nil)
        #expect(v("[]") == .array([]))
        #expect(v("Roma::Storage::RubyHashStorage") == .constant("Roma::Storage::RubyHashStorage"))
        #expect(v("File.expand_path('~/roma')") == .unreadable("File.expand_path('~/roma')"))
        #expect(v("\"#{ENV['HOME']}/roma\"") == .unreadable("\"#{ENV['HOME']}/roma\""))
        #expect(v("2 ** 10") == .unreadable("2 ** 10"))
        // `==` is a comparison, not an assignment.
        #expect(RubyConfig.assignments(in: "X == 1\n").isEmpty)
    }

    @Test func rubyHashAndTCMemStorageSelectTheMemoryEngine() throws {
        for cls in ["Roma::Storage::RubyHashStorage", "Roma::Storage::TCMemStorage"] {
            let c = try config("module Roma\n  module Config\n    STORAGE_CLASS = \(cls)\n  end\nend\n")
            #expect(c.storage == .memory)
        }
    }

    @Test func anUnreadableValueOfAUsedSettingIsRefusedWithItsLine() throws {
        let text = "module Roma\n  module Config\n    CONNECTION_USE_EPOLL = File.size('x')\n    STORAGE_PATH = File.expand_path('~/roma')\n  end\nend\n"
        let path = try write(text)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var c = NodeConfig()
        do {
            try c.apply(configFile: path)
            Issue.record("an unreadable STORAGE_PATH must be refused")
        } catch let e as ConfigError {
            #expect(e.description.contains("\(path):4: cannot evaluate STORAGE_PATH = File.expand_path('~/roma')"))
        }
    }

    @Test func aWrongVersionIsRefusedAsRomaDoes() throws {
        #expect(throws: ConfigError.self) { _ = try config("module Roma\n  module Config\n    VERSION = \"1.2.0\"\n  end\nend\n") }
    }

    @Test func rubyIsRecognisedWithoutTheExtensionAndYamlStillWorks() throws {
        #expect(try config("require 'roma/storage/tc_storage'\nmodule Roma\n module Config\n  STORAGE_DIVNUM = 4\n end\nend\n", ext: "conf").divnum == 4)
        #expect(try config("STORAGE_DIVNUM: 6\nDEFAULT_PORT: 11211\n", ext: "yml").divnum == 6)
        #expect(try config("# comment\nSTORAGE_DIVNUM: 7\n", ext: "yml").divnum == 7)
    }

    @Test func arbitraryTextNeverTrapsAndEveryValueIsReadOrUnreadable() {
        // Pieces of Ruby (and of everything else) shuffled into 2,000 files: the reader must
        // return, and what it returns must be usable (a value or `unreadable`, never a trap).
        let pieces = ["X = ", "STORAGE_PATH = ", "'", "\"", "#{", "}", "(", ")", "[", "]", ",", "*", "/", "-", "+",
                      "0", "12_000", "1.5e3", ":sym", "Roma::Storage::TCStorage", "\\", "#", "\n", " ", "\t",
                      "module Roma", "end", "def self.get_stat", "==", "=", "nil", "true", "2 ** 3", "\u{1F600}", "\r\n"]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            var text = ""
            for _ in 0..<Int.random(in: 0...40, using: &rng) { text += pieces.randomElement(using: &rng)! }
            for a in RubyConfig.assignments(in: text) {
                #expect(!a.name.isEmpty && a.line >= 1)
                _ = a.value.yamlNode
            }
        }
        // Division by zero and overflow are not evaluated (unreadable), not trapped on.
        #expect(RubyConfig.assignments(in: "X = 1 / 0\n").first?.value == .unreadable("1 / 0"))
        #expect(RubyConfig.assignments(in: "X = 9223372036854775807 * 9\n").first?.value == .unreadable("9223372036854775807 * 9"))
        #expect(RubyConfig.assignments(in: "X = 9223372036854775807 + 1\n").first?.value == .unreadable("9223372036854775807 + 1"))
    }
}
