// Kafka protocol error codes, transcribed from Apache Kafka's
// clients/src/main/java/org/apache/kafka/common/protocol/Errors.java (4.x: codes -1 through 133).
// `retriable` is true exactly when the code's exception class extends
// org.apache.kafka.common.errors.RetriableException (directly, or via RefreshRetriableException /
// InvalidMetadataException), which is what Kafka's own protocol docs report as "Retriable".

/// A Kafka protocol error code (Errors.java). `.none` is code 0.
///
/// A struct rather than an enum so that codes this table does not know (newer brokers, garbage on the
/// wire) still round-trip: they report `name == "UNKNOWN_CODE_<n>"`, are not retriable and have no message.
public struct KafkaErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int16

    public init(rawValue: Int16) { self.rawValue = rawValue }
    public init(_ code: Int16) { self.rawValue = code }

    public static let unknownServerError = KafkaErrorCode(rawValue: -1)
    public static let none = KafkaErrorCode(rawValue: 0)
    public static let offsetOutOfRange = KafkaErrorCode(rawValue: 1)
    public static let corruptMessage = KafkaErrorCode(rawValue: 2)
    public static let unknownTopicOrPartition = KafkaErrorCode(rawValue: 3)
    public static let invalidFetchSize = KafkaErrorCode(rawValue: 4)
    public static let leaderNotAvailable = KafkaErrorCode(rawValue: 5)
    public static let notLeaderOrFollower = KafkaErrorCode(rawValue: 6)
    public static let requestTimedOut = KafkaErrorCode(rawValue: 7)
    public static let brokerNotAvailable = KafkaErrorCode(rawValue: 8)
    public static let replicaNotAvailable = KafkaErrorCode(rawValue: 9)
    public static let messageTooLarge = KafkaErrorCode(rawValue: 10)
    public static let staleControllerEpoch = KafkaErrorCode(rawValue: 11)
    public static let offsetMetadataTooLarge = KafkaErrorCode(rawValue: 12)
    public static let networkException = KafkaErrorCode(rawValue: 13)
    public static let coordinatorLoadInProgress = KafkaErrorCode(rawValue: 14)
    public static let coordinatorNotAvailable = KafkaErrorCode(rawValue: 15)
    public static let notCoordinator = KafkaErrorCode(rawValue: 16)
    public static let invalidTopicException = KafkaErrorCode(rawValue: 17)
    public static let recordListTooLarge = KafkaErrorCode(rawValue: 18)
    public static let notEnoughReplicas = KafkaErrorCode(rawValue: 19)
    public static let notEnoughReplicasAfterAppend = KafkaErrorCode(rawValue: 20)
    public static let invalidRequiredAcks = KafkaErrorCode(rawValue: 21)
    public static let illegalGeneration = KafkaErrorCode(rawValue: 22)
    public static let inconsistentGroupProtocol = KafkaErrorCode(rawValue: 23)
    public static let invalidGroupId = KafkaErrorCode(rawValue: 24)
    public static let unknownMemberId = KafkaErrorCode(rawValue: 25)
    public static let invalidSessionTimeout = KafkaErrorCode(rawValue: 26)
    public static let rebalanceInProgress = KafkaErrorCode(rawValue: 27)
    public static let invalidCommitOffsetSize = KafkaErrorCode(rawValue: 28)
    public static let topicAuthorizationFailed = KafkaErrorCode(rawValue: 29)
    public static let groupAuthorizationFailed = KafkaErrorCode(rawValue: 30)
    public static let clusterAuthorizationFailed = KafkaErrorCode(rawValue: 31)
    public static let invalidTimestamp = KafkaErrorCode(rawValue: 32)
    public static let unsupportedSaslMechanism = KafkaErrorCode(rawValue: 33)
    public static let illegalSaslState = KafkaErrorCode(rawValue: 34)
    public static let unsupportedVersion = KafkaErrorCode(rawValue: 35)
    public static let topicAlreadyExists = KafkaErrorCode(rawValue: 36)
    public static let invalidPartitions = KafkaErrorCode(rawValue: 37)
    public static let invalidReplicationFactor = KafkaErrorCode(rawValue: 38)
    public static let invalidReplicaAssignment = KafkaErrorCode(rawValue: 39)
    public static let invalidConfig = KafkaErrorCode(rawValue: 40)
    public static let notController = KafkaErrorCode(rawValue: 41)
    public static let invalidRequest = KafkaErrorCode(rawValue: 42)
    public static let unsupportedForMessageFormat = KafkaErrorCode(rawValue: 43)
    public static let policyViolation = KafkaErrorCode(rawValue: 44)
    public static let outOfOrderSequenceNumber = KafkaErrorCode(rawValue: 45)
    public static let duplicateSequenceNumber = KafkaErrorCode(rawValue: 46)
    public static let invalidProducerEpoch = KafkaErrorCode(rawValue: 47)
    public static let invalidTxnState = KafkaErrorCode(rawValue: 48)
    public static let invalidProducerIdMapping = KafkaErrorCode(rawValue: 49)
    public static let invalidTransactionTimeout = KafkaErrorCode(rawValue: 50)
    public static let concurrentTransactions = KafkaErrorCode(rawValue: 51)
    public static let transactionCoordinatorFenced = KafkaErrorCode(rawValue: 52)
    public static let transactionalIdAuthorizationFailed = KafkaErrorCode(rawValue: 53)
    public static let securityDisabled = KafkaErrorCode(rawValue: 54)
    public static let operationNotAttempted = KafkaErrorCode(rawValue: 55)
    public static let kafkaStorageError = KafkaErrorCode(rawValue: 56)
    public static let logDirNotFound = KafkaErrorCode(rawValue: 57)
    public static let saslAuthenticationFailed = KafkaErrorCode(rawValue: 58)
    public static let unknownProducerId = KafkaErrorCode(rawValue: 59)
    public static let reassignmentInProgress = KafkaErrorCode(rawValue: 60)
    public static let delegationTokenAuthDisabled = KafkaErrorCode(rawValue: 61)
    public static let delegationTokenNotFound = KafkaErrorCode(rawValue: 62)
    public static let delegationTokenOwnerMismatch = KafkaErrorCode(rawValue: 63)
    public static let delegationTokenRequestNotAllowed = KafkaErrorCode(rawValue: 64)
    public static let delegationTokenAuthorizationFailed = KafkaErrorCode(rawValue: 65)
    public static let delegationTokenExpired = KafkaErrorCode(rawValue: 66)
    public static let invalidPrincipalType = KafkaErrorCode(rawValue: 67)
    public static let nonEmptyGroup = KafkaErrorCode(rawValue: 68)
    public static let groupIdNotFound = KafkaErrorCode(rawValue: 69)
    public static let fetchSessionIdNotFound = KafkaErrorCode(rawValue: 70)
    public static let invalidFetchSessionEpoch = KafkaErrorCode(rawValue: 71)
    public static let listenerNotFound = KafkaErrorCode(rawValue: 72)
    public static let topicDeletionDisabled = KafkaErrorCode(rawValue: 73)
    public static let fencedLeaderEpoch = KafkaErrorCode(rawValue: 74)
    public static let unknownLeaderEpoch = KafkaErrorCode(rawValue: 75)
    public static let unsupportedCompressionType = KafkaErrorCode(rawValue: 76)
    public static let staleBrokerEpoch = KafkaErrorCode(rawValue: 77)
    public static let offsetNotAvailable = KafkaErrorCode(rawValue: 78)
    public static let memberIdRequired = KafkaErrorCode(rawValue: 79)
    public static let preferredLeaderNotAvailable = KafkaErrorCode(rawValue: 80)
    public static let groupMaxSizeReached = KafkaErrorCode(rawValue: 81)
    public static let fencedInstanceId = KafkaErrorCode(rawValue: 82)
    public static let eligibleLeadersNotAvailable = KafkaErrorCode(rawValue: 83)
    public static let electionNotNeeded = KafkaErrorCode(rawValue: 84)
    public static let noReassignmentInProgress = KafkaErrorCode(rawValue: 85)
    public static let groupSubscribedToTopic = KafkaErrorCode(rawValue: 86)
    public static let invalidRecord = KafkaErrorCode(rawValue: 87)
    public static let unstableOffsetCommit = KafkaErrorCode(rawValue: 88)
    public static let throttlingQuotaExceeded = KafkaErrorCode(rawValue: 89)
    public static let producerFenced = KafkaErrorCode(rawValue: 90)
    public static let resourceNotFound = KafkaErrorCode(rawValue: 91)
    public static let duplicateResource = KafkaErrorCode(rawValue: 92)
    public static let unacceptableCredential = KafkaErrorCode(rawValue: 93)
    public static let inconsistentVoterSet = KafkaErrorCode(rawValue: 94)
    public static let invalidUpdateVersion = KafkaErrorCode(rawValue: 95)
    public static let featureUpdateFailed = KafkaErrorCode(rawValue: 96)
    public static let principalDeserializationFailure = KafkaErrorCode(rawValue: 97)
    public static let snapshotNotFound = KafkaErrorCode(rawValue: 98)
    public static let positionOutOfRange = KafkaErrorCode(rawValue: 99)
    public static let unknownTopicId = KafkaErrorCode(rawValue: 100)
    public static let duplicateBrokerRegistration = KafkaErrorCode(rawValue: 101)
    public static let brokerIdNotRegistered = KafkaErrorCode(rawValue: 102)
    public static let inconsistentTopicId = KafkaErrorCode(rawValue: 103)
    public static let inconsistentClusterId = KafkaErrorCode(rawValue: 104)
    public static let transactionalIdNotFound = KafkaErrorCode(rawValue: 105)
    public static let fetchSessionTopicIdError = KafkaErrorCode(rawValue: 106)
    public static let ineligibleReplica = KafkaErrorCode(rawValue: 107)
    public static let newLeaderElected = KafkaErrorCode(rawValue: 108)
    public static let offsetMovedToTieredStorage = KafkaErrorCode(rawValue: 109)
    public static let fencedMemberEpoch = KafkaErrorCode(rawValue: 110)
    public static let unreleasedInstanceId = KafkaErrorCode(rawValue: 111)
    public static let unsupportedAssignor = KafkaErrorCode(rawValue: 112)
    public static let staleMemberEpoch = KafkaErrorCode(rawValue: 113)
    public static let mismatchedEndpointType = KafkaErrorCode(rawValue: 114)
    public static let unsupportedEndpointType = KafkaErrorCode(rawValue: 115)
    public static let unknownControllerId = KafkaErrorCode(rawValue: 116)
    public static let unknownSubscriptionId = KafkaErrorCode(rawValue: 117)
    public static let telemetryTooLarge = KafkaErrorCode(rawValue: 118)
    public static let invalidRegistration = KafkaErrorCode(rawValue: 119)
    public static let transactionAbortable = KafkaErrorCode(rawValue: 120)
    public static let invalidRecordState = KafkaErrorCode(rawValue: 121)
    public static let shareSessionNotFound = KafkaErrorCode(rawValue: 122)
    public static let invalidShareSessionEpoch = KafkaErrorCode(rawValue: 123)
    public static let fencedStateEpoch = KafkaErrorCode(rawValue: 124)
    public static let invalidVoterKey = KafkaErrorCode(rawValue: 125)
    public static let duplicateVoter = KafkaErrorCode(rawValue: 126)
    public static let voterNotFound = KafkaErrorCode(rawValue: 127)
    public static let invalidRegularExpression = KafkaErrorCode(rawValue: 128)
    public static let rebootstrapRequired = KafkaErrorCode(rawValue: 129)
    public static let streamsInvalidTopology = KafkaErrorCode(rawValue: 130)
    public static let streamsInvalidTopologyEpoch = KafkaErrorCode(rawValue: 131)
    public static let streamsTopologyFenced = KafkaErrorCode(rawValue: 132)
    public static let shareSessionLimitReached = KafkaErrorCode(rawValue: 133)

    /// Kafka's name, e.g. "OFFSET_OUT_OF_RANGE"; "UNKNOWN_CODE_<n>" for codes not in the table.
    public var name: String { Self.byCode[rawValue]?.name ?? "UNKNOWN_CODE_\(rawValue)" }

    /// Whether Kafka's exception for this code is retriable (extends `RetriableException`).
    /// Unknown codes are not retriable.
    public var isRetriable: Bool { Self.byCode[rawValue]?.retriable ?? false }

    /// Kafka's default message for the code (the string passed to the exception in Errors.java).
    /// Empty for `.none` (Kafka passes null) and for unknown codes.
    public var message: String { Self.byCode[rawValue]?.message ?? "" }

    /// e.g. "OFFSET_OUT_OF_RANGE (1): The requested offset is not within the range of offsets maintained by the server."
    public var description: String {
        message.isEmpty ? "\(name) (\(rawValue))" : "\(name) (\(rawValue)): \(message)"
    }

    /// Every known code, in numeric order.
    public static let allKnown: [KafkaErrorCode] = table.map { KafkaErrorCode(rawValue: $0.code) }

    private struct Entry: Sendable {
        let code: Int16, name: String, retriable: Bool, message: String
        init(_ code: Int16, _ name: String, _ retriable: Bool, _ message: String) {
            (self.code, self.name, self.retriable, self.message) = (code, name, retriable, message)
        }
    }

    private static let byCode: [Int16: Entry] = Dictionary(uniqueKeysWithValues: table.map { ($0.code, $0) })

    /// The single source of truth: one entry per code, in numeric order (Errors.java declaration order).
    private static let table: [Entry] = [
        .init(-1, "UNKNOWN_SERVER_ERROR", false, "The server experienced an unexpected error when processing the request."),
        .init(0, "NONE", false, ""),
        .init(1, "OFFSET_OUT_OF_RANGE", false, "The requested offset is not within the range of offsets maintained by the server."),
        .init(2, "CORRUPT_MESSAGE", true, "This message has failed its CRC checksum, exceeds the valid size, has a null key for a compacted topic, or is otherwise corrupt."),
        .init(3, "UNKNOWN_TOPIC_OR_PARTITION", true, "This server does not host this topic-partition."),
        .init(4, "INVALID_FETCH_SIZE", false, "The requested fetch size is invalid."),
        .init(5, "LEADER_NOT_AVAILABLE", true, "There is no leader for this topic-partition as we are in the middle of a leadership election."),
        .init(6, "NOT_LEADER_OR_FOLLOWER", true, "For requests intended only for the leader, this error indicates that the broker is not the current leader. For requests intended for any replica, this error indicates that the broker is not a replica of the topic partition."),
        .init(7, "REQUEST_TIMED_OUT", true, "The request timed out."),
        .init(8, "BROKER_NOT_AVAILABLE", false, "The broker is not available."),
        .init(9, "REPLICA_NOT_AVAILABLE", true, "The replica is not available for the requested topic-partition. Produce/Fetch requests and other requests intended only for the leader or follower return NOT_LEADER_OR_FOLLOWER if the broker is not a replica of the topic-partition."),
        .init(10, "MESSAGE_TOO_LARGE", false, "The request included a message larger than the max message size the server will accept."),
        .init(11, "STALE_CONTROLLER_EPOCH", false, "The controller moved to another broker."),
        .init(12, "OFFSET_METADATA_TOO_LARGE", false, "The metadata field of the offset request was too large."),
        .init(13, "NETWORK_EXCEPTION", true, "The server disconnected before a response was received."),
        .init(14, "COORDINATOR_LOAD_IN_PROGRESS", true, "The coordinator is loading and hence can't process requests."),
        .init(15, "COORDINATOR_NOT_AVAILABLE", true, "The coordinator is not available."),
        .init(16, "NOT_COORDINATOR", true, "This is not the correct coordinator."),
        .init(17, "INVALID_TOPIC_EXCEPTION", false, "The request attempted to perform an operation on an invalid topic."),
        .init(18, "RECORD_LIST_TOO_LARGE", false, "The request included message batch larger than the configured segment size on the server."),
        .init(19, "NOT_ENOUGH_REPLICAS", true, "Messages are rejected since there are fewer in-sync replicas than required."),
        .init(20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", true, "Messages are written to the log, but to fewer in-sync replicas than required."),
        .init(21, "INVALID_REQUIRED_ACKS", false, "Produce request specified an invalid value for required acks."),
        .init(22, "ILLEGAL_GENERATION", false, "Specified group generation id is not valid."),
        .init(23, "INCONSISTENT_GROUP_PROTOCOL", false, "The group member's supported protocols are incompatible with those of existing members or first group member tried to join with empty protocol type or empty protocol list."),
        .init(24, "INVALID_GROUP_ID", false, "The group id is invalid."),
        .init(25, "UNKNOWN_MEMBER_ID", false, "The coordinator is not aware of this member."),
        .init(26, "INVALID_SESSION_TIMEOUT", false, "The session timeout is not within the range allowed by the broker (as configured by group.min.session.timeout.ms and group.max.session.timeout.ms)."),
        .init(27, "REBALANCE_IN_PROGRESS", false, "The group is rebalancing, so a rejoin is needed."),
        .init(28, "INVALID_COMMIT_OFFSET_SIZE", false, "The committing offset data size is not valid."),
        .init(29, "TOPIC_AUTHORIZATION_FAILED", false, "Topic authorization failed."),
        .init(30, "GROUP_AUTHORIZATION_FAILED", false, "Group authorization failed."),
        .init(31, "CLUSTER_AUTHORIZATION_FAILED", false, "Cluster authorization failed."),
        .init(32, "INVALID_TIMESTAMP", false, "The timestamp of the message is out of acceptable range."),
        .init(33, "UNSUPPORTED_SASL_MECHANISM", false, "The broker does not support the requested SASL mechanism."),
        .init(34, "ILLEGAL_SASL_STATE", false, "Request is not valid given the current SASL state."),
        .init(35, "UNSUPPORTED_VERSION", false, "The version of API is not supported."),
        .init(36, "TOPIC_ALREADY_EXISTS", false, "Topic with this name already exists."),
        .init(37, "INVALID_PARTITIONS", false, "Number of partitions is below 1."),
        .init(38, "INVALID_REPLICATION_FACTOR", false, "Replication factor is below 1 or larger than the number of available brokers."),
        .init(39, "INVALID_REPLICA_ASSIGNMENT", false, "Replica assignment is invalid."),
        .init(40, "INVALID_CONFIG", false, "Configuration is invalid."),
        .init(41, "NOT_CONTROLLER", true, "This is not the correct controller for this cluster."),
        .init(42, "INVALID_REQUEST", false, "This most likely occurs because of a request being malformed by the client library or the message was sent to an incompatible broker. See the broker logs for more details."),
        .init(43, "UNSUPPORTED_FOR_MESSAGE_FORMAT", false, "The message format version on the broker does not support the request."),
        .init(44, "POLICY_VIOLATION", false, "Request parameters do not satisfy the configured policy."),
        .init(45, "OUT_OF_ORDER_SEQUENCE_NUMBER", false, "The broker received an out of order sequence number."),
        .init(46, "DUPLICATE_SEQUENCE_NUMBER", false, "The broker received a duplicate sequence number."),
        .init(47, "INVALID_PRODUCER_EPOCH", false, "Producer attempted to produce with an old epoch."),
        .init(48, "INVALID_TXN_STATE", false, "The producer attempted a transactional operation in an invalid state."),
        .init(49, "INVALID_PRODUCER_ID_MAPPING", false, "The producer attempted to use a producer id which is not currently assigned to its transactional id."),
        .init(50, "INVALID_TRANSACTION_TIMEOUT", false, "The transaction timeout is larger than the maximum value allowed by the broker (as configured by transaction.max.timeout.ms)."),
        .init(51, "CONCURRENT_TRANSACTIONS", true, "The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing."),
        .init(52, "TRANSACTION_COORDINATOR_FENCED", false, "Indicates that the transaction coordinator sending a WriteTxnMarker is no longer the current coordinator for a given producer."),
        .init(53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", false, "Transactional Id authorization failed."),
        .init(54, "SECURITY_DISABLED", false, "Security features are disabled."),
        .init(55, "OPERATION_NOT_ATTEMPTED", false, "The broker did not attempt to execute this operation. This may happen for batched RPCs where some operations in the batch failed, causing the broker to respond without trying the rest."),
        .init(56, "KAFKA_STORAGE_ERROR", true, "Disk error when trying to access log file on the disk."),
        .init(57, "LOG_DIR_NOT_FOUND", false, "The user-specified log directory is not found in the broker config."),
        .init(58, "SASL_AUTHENTICATION_FAILED", false, "SASL Authentication failed."),
        .init(59, "UNKNOWN_PRODUCER_ID", false, "This exception is raised by the broker if it could not locate the producer metadata associated with the producerId in question. This could happen if, for instance, the producer's records were deleted because their retention time had elapsed. Once the last records of the producerId are removed, the producer's metadata is removed from the broker, and future appends by the producer will return this exception."),
        .init(60, "REASSIGNMENT_IN_PROGRESS", false, "A partition reassignment is in progress."),
        .init(61, "DELEGATION_TOKEN_AUTH_DISABLED", false, "Delegation Token feature is not enabled."),
        .init(62, "DELEGATION_TOKEN_NOT_FOUND", false, "Delegation Token is not found on server."),
        .init(63, "DELEGATION_TOKEN_OWNER_MISMATCH", false, "Specified Principal is not valid Owner/Renewer."),
        .init(64, "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED", false, "Delegation Token requests are not allowed on PLAINTEXT/1-way SSL channels and on delegation token authenticated channels."),
        .init(65, "DELEGATION_TOKEN_AUTHORIZATION_FAILED", false, "Delegation Token authorization failed."),
        .init(66, "DELEGATION_TOKEN_EXPIRED", false, "Delegation Token is expired."),
        .init(67, "INVALID_PRINCIPAL_TYPE", false, "Supplied principalType is not supported."),
        .init(68, "NON_EMPTY_GROUP", false, "The group is not empty."),
        .init(69, "GROUP_ID_NOT_FOUND", false, "The group id does not exist."),
        .init(70, "FETCH_SESSION_ID_NOT_FOUND", true, "The fetch session ID was not found."),
        .init(71, "INVALID_FETCH_SESSION_EPOCH", true, "The fetch session epoch is invalid."),
        .init(72, "LISTENER_NOT_FOUND", true, "There is no listener on the leader broker that matches the listener on which metadata request was processed."),
        .init(73, "TOPIC_DELETION_DISABLED", false, "Topic deletion is disabled."),
        .init(74, "FENCED_LEADER_EPOCH", true, "The leader epoch in the request is older than the epoch on the broker."),
        .init(75, "UNKNOWN_LEADER_EPOCH", true, "The leader epoch in the request is newer than the epoch on the broker."),
        .init(76, "UNSUPPORTED_COMPRESSION_TYPE", false, "The requesting client does not support the compression type of given partition."),
        .init(77, "STALE_BROKER_EPOCH", false, "Broker epoch has changed."),
        .init(78, "OFFSET_NOT_AVAILABLE", true, "The leader high watermark has not caught up from a recent leader election so the offsets cannot be guaranteed to be monotonically increasing."),
        .init(79, "MEMBER_ID_REQUIRED", false, "The group member needs to have a valid member id before actually entering a consumer group."),
        .init(80, "PREFERRED_LEADER_NOT_AVAILABLE", true, "The preferred leader was not available."),
        .init(81, "GROUP_MAX_SIZE_REACHED", false, "The group has reached its maximum size."),
        .init(82, "FENCED_INSTANCE_ID", false, "The broker rejected this static consumer since another consumer with the same group.instance.id has registered with a different member.id."),
        .init(83, "ELIGIBLE_LEADERS_NOT_AVAILABLE", true, "Eligible topic partition leaders are not available."),
        .init(84, "ELECTION_NOT_NEEDED", true, "Leader election not needed for topic partition."),
        .init(85, "NO_REASSIGNMENT_IN_PROGRESS", false, "No partition reassignment is in progress."),
        .init(86, "GROUP_SUBSCRIBED_TO_TOPIC", false, "Deleting offsets of a topic is forbidden while the consumer group is actively subscribed to it."),
        .init(87, "INVALID_RECORD", false, "This record has failed the validation on broker and hence will be rejected."),
        .init(88, "UNSTABLE_OFFSET_COMMIT", true, "There are unstable offsets that need to be cleared."),
        .init(89, "THROTTLING_QUOTA_EXCEEDED", true, "The throttling quota has been exceeded."),
        .init(90, "PRODUCER_FENCED", false, "There is a newer producer with the same transactionalId which fences the current one."),
        .init(91, "RESOURCE_NOT_FOUND", false, "A request illegally referred to a resource that does not exist."),
        .init(92, "DUPLICATE_RESOURCE", false, "A request illegally referred to the same resource twice."),
        .init(93, "UNACCEPTABLE_CREDENTIAL", false, "Requested credential would not meet criteria for acceptability."),
        .init(94, "INCONSISTENT_VOTER_SET", false, "Indicates that the either the sender or recipient of a voter-only request is not one of the expected voters."),
        .init(95, "INVALID_UPDATE_VERSION", false, "The given update version was invalid."),
        .init(96, "FEATURE_UPDATE_FAILED", false, "Unable to update finalized features due to an unexpected server error."),
        .init(97, "PRINCIPAL_DESERIALIZATION_FAILURE", false, "Request principal deserialization failed during forwarding. This indicates an internal error on the broker cluster security setup."),
        .init(98, "SNAPSHOT_NOT_FOUND", false, "Requested snapshot was not found."),
        .init(99, "POSITION_OUT_OF_RANGE", false, "Requested position is not greater than or equal to zero, and less than the size of the snapshot."),
        .init(100, "UNKNOWN_TOPIC_ID", true, "This server does not host this topic ID."),
        .init(101, "DUPLICATE_BROKER_REGISTRATION", false, "This broker ID is already in use."),
        .init(102, "BROKER_ID_NOT_REGISTERED", false, "The given broker ID was not registered."),
        .init(103, "INCONSISTENT_TOPIC_ID", true, "The log's topic ID did not match the topic ID in the request."),
        .init(104, "INCONSISTENT_CLUSTER_ID", false, "The clusterId in the request does not match that found on the server."),
        .init(105, "TRANSACTIONAL_ID_NOT_FOUND", false, "The transactionalId could not be found."),
        .init(106, "FETCH_SESSION_TOPIC_ID_ERROR", true, "The fetch session encountered inconsistent topic ID usage."),
        .init(107, "INELIGIBLE_REPLICA", false, "The new ISR contains at least one ineligible replica."),
        .init(108, "NEW_LEADER_ELECTED", false, "The AlterPartition request successfully updated the partition state but the leader has changed."),
        .init(109, "OFFSET_MOVED_TO_TIERED_STORAGE", false, "The requested offset is moved to tiered storage."),
        .init(110, "FENCED_MEMBER_EPOCH", false, "The member epoch is fenced by the group coordinator. The member must abandon all its partitions and rejoin."),
        .init(111, "UNRELEASED_INSTANCE_ID", false, "The instance ID is still used by another member in the consumer group. That member must leave first."),
        .init(112, "UNSUPPORTED_ASSIGNOR", false, "The assignor or its version range is not supported by the consumer group."),
        .init(113, "STALE_MEMBER_EPOCH", false, "The member epoch is stale. The member must retry after receiving its updated member epoch via the ConsumerGroupHeartbeat API."),
        .init(114, "MISMATCHED_ENDPOINT_TYPE", false, "The request was sent to an endpoint of the wrong type."),
        .init(115, "UNSUPPORTED_ENDPOINT_TYPE", false, "This endpoint type is not supported yet."),
        .init(116, "UNKNOWN_CONTROLLER_ID", false, "This controller ID is not known."),
        .init(117, "UNKNOWN_SUBSCRIPTION_ID", false, "Client sent a push telemetry request with an invalid or outdated subscription ID."),
        .init(118, "TELEMETRY_TOO_LARGE", false, "Client sent a push telemetry request larger than the maximum size the broker will accept."),
        .init(119, "INVALID_REGISTRATION", false, "The controller has considered the broker registration to be invalid."),
        .init(120, "TRANSACTION_ABORTABLE", false, "The server encountered an error with the transaction. The client can abort the transaction to continue using this transactional ID."),
        .init(121, "INVALID_RECORD_STATE", false, "The record state is invalid. The acknowledgement of delivery could not be completed."),
        .init(122, "SHARE_SESSION_NOT_FOUND", true, "The share session was not found."),
        .init(123, "INVALID_SHARE_SESSION_EPOCH", true, "The share session epoch is invalid."),
        .init(124, "FENCED_STATE_EPOCH", false, "The share coordinator rejected the request because the share-group state epoch did not match."),
        .init(125, "INVALID_VOTER_KEY", false, "The voter key doesn't match the receiving replica's key."),
        .init(126, "DUPLICATE_VOTER", false, "The voter is already part of the set of voters."),
        .init(127, "VOTER_NOT_FOUND", false, "The voter is not part of the set of voters."),
        .init(128, "INVALID_REGULAR_EXPRESSION", false, "The regular expression is not valid."),
        .init(129, "REBOOTSTRAP_REQUIRED", false, "Client metadata is stale. The client should rebootstrap to obtain new metadata."),
        .init(130, "STREAMS_INVALID_TOPOLOGY", false, "The supplied topology is invalid."),
        .init(131, "STREAMS_INVALID_TOPOLOGY_EPOCH", false, "The supplied topology epoch is invalid."),
        .init(132, "STREAMS_TOPOLOGY_FENCED", false, "The supplied topology epoch is outdated."),
        .init(133, "SHARE_SESSION_LIMIT_REACHED", true, "The limit of share sessions has been reached."),
    ]
}

/// A typed Swift error carrying a Kafka error code, for throwing inside the broker/client.
public struct KafkaError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: KafkaErrorCode
    /// Extra context, e.g. "topic 'x' partition 3".
    public var detail: String?

    public init(_ code: KafkaErrorCode, _ detail: String? = nil) {
        self.code = code
        self.detail = detail
    }

    /// e.g. "UNKNOWN_TOPIC_OR_PARTITION (3): This server does not host this topic-partition. [topic 'x' partition 3]"
    public var description: String {
        guard let detail, !detail.isEmpty else { return code.description }
        return "\(code.description) [\(detail)]"
    }
}
