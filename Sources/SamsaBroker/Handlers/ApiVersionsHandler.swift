import KafkaProtocol

/// ApiVersions 0–4: the APIs and versions this broker serves (from the handler registry), and
/// the client's software name and version (v3+, KIP-511).
struct ApiVersionsHandler: APIHandler {
    static let supportedVersions: ClosedRange<Int16> = 0...4
    let apis: [(key: Int16, versions: ClosedRange<Int16>)]
    var versions: ClosedRange<Int16> { Self.supportedVersions }

    func handle(_ request: ApiVersionsRequest, context: RequestContext) -> HandlerOutcome<ApiVersionsResponse> {
        var response = ApiVersionsResponse()
        response.apiKeys = apis.map { .init(apiKey: $0.key, minVersion: $0.versions.lowerBound, maxVersion: $0.versions.upperBound) }
        if context.apiVersion >= 3 {
            guard Self.isValidSoftwareField(request.clientSoftwareName), Self.isValidSoftwareField(request.clientSoftwareVersion) else {
                response.errorCode = KafkaErrorCode.invalidRequest.rawValue
                return .respond(response)
            }
            context.connection.clientSoftware = (request.clientSoftwareName, request.clientSoftwareVersion)
        }
        return .respond(response)
    }

    /// Kafka's rule for client software names and versions: `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`.
    static func isValidSoftwareField(_ s: String) -> Bool {
        let bytes = Array(s.utf8)
        func alnum(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) }
        guard let first = bytes.first, let last = bytes.last, alnum(first), alnum(last) else { return false }
        return bytes.allSatisfy { alnum($0) || $0 == 0x2D || $0 == 0x2E }
    }
}
