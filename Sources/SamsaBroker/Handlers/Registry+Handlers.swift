import KafkaProtocol

/// Registers every API the broker serves. ApiVersions is registered last, with the final list.
func registerHandlers(_ registry: inout HandlerRegistry, services: BrokerServices, groups: GroupCoordinatorService) {
    registry.register(MetadataHandler(services: services))
    registry.register(ProduceHandler(services: services))
    registry.register(FetchHandler(services: services))
    registry.register(ListOffsetsHandler(services: services))
    registry.register(CreateTopicsHandler(services: services))
    registry.register(DeleteTopicsHandler(services: services))
    registry.register(CreatePartitionsHandler(services: services))
    registry.register(DescribeConfigsHandler(services: services))
    registry.register(AlterConfigsHandler(services: services))
    registry.register(IncrementalAlterConfigsHandler(services: services))
    registry.register(DeleteRecordsHandler(services: services))
    registry.register(DescribeClusterHandler(services: services))
    registry.register(DescribeTopicPartitionsHandler(services: services))
    registry.register(DescribeLogDirsHandler(services: services))
    registry.register(AlterReplicaLogDirsHandler(services: services))
    registry.register(OffsetForLeaderEpochHandler(services: services))
    registry.register(InitProducerIdHandler(services: services))
    registry.register(FindCoordinatorHandler(services: services, groups: groups))
    registry.register(JoinGroupHandler(groups: groups))
    registry.register(SyncGroupHandler(groups: groups))
    registry.register(HeartbeatHandler(groups: groups))
    registry.register(LeaveGroupHandler(groups: groups))
    registry.register(OffsetCommitHandler(services: services, groups: groups))
    registry.register(OffsetFetchHandler(groups: groups))
    registry.register(DescribeGroupsHandler(groups: groups))
    registry.register(ListGroupsHandler(groups: groups))
    registry.register(DeleteGroupsHandler(groups: groups))
    registry.register(OffsetDeleteHandler(groups: groups))
    registerApiVersions(&registry)
}

/// The inter-broker APIs of a cluster (ZooKeeper mode), then ApiVersions again with them.
func registerClusterHandlers(_ registry: inout HandlerRegistry, cluster: ClusterMember, controller: ControllerDriver, services: BrokerServices) {
    registry.register(LeaderAndIsrHandler(cluster: cluster))
    registry.register(UpdateMetadataHandler(cluster: cluster))
    registry.register(StopReplicaHandler(cluster: cluster))
    registry.register(AlterPartitionHandler(controller: controller))
    registry.register(ControlledShutdownHandler(controller: controller))
    registry.register(ElectLeadersHandler(controller: controller, services: services))
    registry.register(AlterPartitionReassignmentsHandler(controller: controller))
    registry.register(ListPartitionReassignmentsHandler(controller: controller))
    registerApiVersions(&registry)
}

private func registerApiVersions(_ registry: inout HandlerRegistry) {
    let apis = (registry.supported.filter { $0.key != ApiKey.apiVersions.rawValue } + [(ApiKey.apiVersions.rawValue, ApiVersionsHandler.supportedVersions)]).sorted { $0.key < $1.key }
    registry.register(ApiVersionsHandler(apis: apis))
}
