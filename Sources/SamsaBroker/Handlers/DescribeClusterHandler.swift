import KafkaProtocol

/// DescribeCluster 0–1: cluster id, controller and brokers.
struct DescribeClusterHandler: APIHandler {
    let services: BrokerServices
    var versions: ClosedRange<Int16> { 0...1 }

    func handle(_ request: DescribeClusterRequest, context: RequestContext) -> HandlerOutcome<DescribeClusterResponse> {
        let snapshot = services.cache.snapshot
        var response = DescribeClusterResponse(clusterId: snapshot.clusterId, controllerId: snapshot.controllerId)
        // endpoint type 1 = brokers; 2 = controllers (a KRaft notion: report this node).
        if request.endpointType != 1 && request.endpointType != 2 {
            response.errorCode = KafkaErrorCode.unsupportedEndpointType.rawValue
            response.errorMessage = "Unsupported endpoint type \(request.endpointType)"
            return .respond(response)
        }
        response.endpointType = request.endpointType
        response.brokers = snapshot.brokers.map { .init(brokerId: $0.id, host: $0.host, port: $0.port, rack: $0.rack) }
        if request.includeClusterAuthorizedOperations { response.clusterAuthorizedOperations = AclOperations.allCluster }
        return .respond(response)
    }
}
