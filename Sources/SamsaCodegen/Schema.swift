import Foundation

/// A version range from Kafka's schema notation: "0+", "1-3", "4", "none".
struct Versions: Equatable {
    var lo: Int
    var hi: Int  // Int.max for an open range

    static let none = Versions(lo: 1, hi: 0)
    var isEmpty: Bool { lo > hi }

    init(lo: Int, hi: Int) {
        self.lo = lo
        self.hi = hi
    }

    init(_ text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t == "none" {
            self = .none
        } else if t.hasSuffix("+"), let lo = Int(t.dropLast()) {
            self.init(lo: lo, hi: .max)
        } else if let dash = t.firstIndex(of: "-"), let lo = Int(t[..<dash]), let hi = Int(t[t.index(after: dash)...]) {
            self.init(lo: lo, hi: hi)
        } else if let v = Int(t) {
            self.init(lo: v, hi: v)
        } else {
            throw CodegenError("bad version range '\(text)'")
        }
    }

    func intersect(_ o: Versions) -> Versions { Versions(lo: max(lo, o.lo), hi: min(hi, o.hi)) }
    func contains(_ o: Versions) -> Bool { o.isEmpty || (lo <= o.lo && o.hi <= hi) }
    func contains(_ v: Int) -> Bool { lo <= v && v <= hi }

    /// A Swift condition on `version` that holds for exactly the versions of `self` within `scope`.
    /// "true" / "false" when the answer is the same for every version in scope.
    func condition(within scope: Versions) -> String {
        let r = intersect(scope)
        if r.isEmpty { return "false" }
        var parts: [String] = []
        if r.lo > scope.lo { parts.append("version >= \(r.lo)") }
        if r.hi < scope.hi { parts.append(r.lo == r.hi ? "version == \(r.hi)" : "version <= \(r.hi)") }
        if parts.count == 2, r.lo == r.hi { parts = ["version == \(r.lo)"] }
        return parts.isEmpty ? "true" : parts.joined(separator: " && ")
    }

    var swiftOptionalRange: String {
        isEmpty ? "nil" : "\(lo)...\(hi == .max ? "Int16.max" : String(hi))"
    }
}

struct CodegenError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A field type from the schema.
indirect enum FieldType: Equatable {
    case bool, int8, int16, uint16, int32, uint32, int64, float64, string, bytes, uuid, records
    case structure(String)
    case array(FieldType)

    init(_ text: String) {
        if text.hasPrefix("[]") {
            self = .array(FieldType(String(text.dropFirst(2))))
            return
        }
        switch text {
        case "bool": self = .bool
        case "int8": self = .int8
        case "int16": self = .int16
        case "uint16": self = .uint16
        case "int32": self = .int32
        case "uint32": self = .uint32
        case "int64": self = .int64
        case "float64": self = .float64
        case "string": self = .string
        case "bytes": self = .bytes
        case "uuid": self = .uuid
        case "records": self = .records
        default: self = .structure(text)
        }
    }

    var isStruct: Bool { if case .structure = self { return true } else { return false } }
    var isArray: Bool { if case .array = self { return true } else { return false } }
}

struct Field {
    var name: String
    var type: FieldType
    var versions: Versions
    var nullableVersions: Versions
    var taggedVersions: Versions
    var tag: Int?
    var defaultValue: String?
    var flexibleOverride: Versions?
    var about: String?
    var fields: [Field]?  // inline struct definition
}

struct StructDef {
    var name: String
    var versions: Versions
    var fields: [Field]
}

struct MessageSpec {
    var name: String
    var kind: String  // request, response, header, data
    var apiKey: Int?
    var validVersions: Versions
    var flexibleVersions: Versions
    var fields: [Field]
    var commonStructs: [StructDef]
    var listeners: [String]
    var latestVersionUnstable: Bool
    var sourceFile: String
}

enum SchemaLoader {
    /// Kafka's JSON allows `//` comments; strip them (outside strings) before parsing.
    static func stripComments(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        var inString = false
        var escaped = false
        var chars = Array(text)
        chars.append("\n")
        var i = 0
        while i < chars.count - 1 {
            let c = chars[i]
            if inString {
                out.append(c)
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
                i += 1
            } else if c == "\"" {
                inString = true
                out.append(c)
                i += 1
            } else if c == "/", chars[i + 1] == "/" {
                while i < chars.count, chars[i] != "\n" { i += 1 }
            } else {
                out.append(c)
                i += 1
            }
        }
        return out
    }

    static func load(_ url: URL) throws -> MessageSpec {
        let text = try String(contentsOf: url, encoding: .utf8)
        let data = Data(stripComments(text).utf8)
        guard let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CodegenError("\(url.lastPathComponent): not a JSON object")
        }
        let name = obj["name"] as! String
        let fields = try (obj["fields"] as? [[String: Any]] ?? []).map { try parseField($0, in: name) }
        let common = try (obj["commonStructs"] as? [[String: Any]] ?? []).map { cs in
            StructDef(name: cs["name"] as! String,
                      versions: try Versions(cs["versions"] as? String ?? "0+"),
                      fields: try (cs["fields"] as! [[String: Any]]).map { try parseField($0, in: name) })
        }
        return MessageSpec(
            name: name,
            kind: obj["type"] as! String,
            apiKey: integer(obj["apiKey"]),
            validVersions: try Versions(obj["validVersions"] as! String),
            flexibleVersions: try Versions(obj["flexibleVersions"] as? String ?? "none"),
            fields: fields,
            commonStructs: common,
            listeners: obj["listeners"] as? [String] ?? [],
            latestVersionUnstable: obj["latestVersionUnstable"] as? Bool ?? false,
            sourceFile: url.lastPathComponent)
    }

    static func integer(_ value: Any?) -> Int? {
        if let i = value as? Int { return i }
        if let n = value as? NSNumber { return n.intValue }
        if let s = value as? String { return Int(s) }
        return nil
    }

    static func parseField(_ f: [String: Any], in message: String) throws -> Field {
        let name = f["name"] as! String
        let tagged = try Versions(f["taggedVersions"] as? String ?? "none")
        // A field with only taggedVersions is present exactly in those versions.
        let versions = try (f["versions"] as? String).map { try Versions($0) } ?? tagged
        // Defaults come as strings or JSON numbers/booleans; they are interpreted by field type later.
        let def: String? = f["default"].map { $0 is NSNull ? "null" : ($0 as? String) ?? "\($0)" }
        return Field(
            name: name,
            type: FieldType(f["type"] as! String),
            versions: versions,
            nullableVersions: try Versions(f["nullableVersions"] as? String ?? "none"),
            taggedVersions: tagged,
            tag: integer(f["tag"]),
            defaultValue: def,
            flexibleOverride: try (f["flexibleVersions"] as? String).map { try Versions($0) },
            about: f["about"] as? String,
            fields: try (f["fields"] as? [[String: Any]])?.map { try parseField($0, in: message) })
    }
}
