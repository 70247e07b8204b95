import Testing
@testable import KafkaProtocol

@Suite("KafkaErrorCode")
struct KafkaErrorCodeTests {
    @Test func offsetOutOfRange() {
        let code = KafkaErrorCode(1)
        #expect(code == .offsetOutOfRange)
        #expect(code.name == "OFFSET_OUT_OF_RANGE")
        #expect(!code.isRetriable)
        #expect(code.description
            == "OFFSET_OUT_OF_RANGE (1): The requested offset is not within the range of offsets maintained by the server.")
    }

    @Test func noneIsZero() {
        #expect(KafkaErrorCode.none.rawValue == 0)
        #expect(KafkaErrorCode(rawValue: 0).name == "NONE")
        #expect(KafkaErrorCode.none.message == "")
        #expect(KafkaErrorCode.none.description == "NONE (0)")
        #expect(!KafkaErrorCode.none.isRetriable)
    }

    @Test func retriableFlagsMatchKafkaExceptionHierarchy() {
        #expect(KafkaErrorCode(6) == .notLeaderOrFollower)
        #expect(KafkaErrorCode.notLeaderOrFollower.name == "NOT_LEADER_OR_FOLLOWER")
        #expect(KafkaErrorCode.notLeaderOrFollower.isRetriable)        // InvalidMetadataException
        #expect(KafkaErrorCode(3).name == "UNKNOWN_TOPIC_OR_PARTITION")
        #expect(KafkaErrorCode.unknownTopicOrPartition.isRetriable)    // InvalidMetadataException
        #expect(KafkaErrorCode(2).name == "CORRUPT_MESSAGE")
        #expect(KafkaErrorCode.corruptMessage.isRetriable)             // CorruptRecordException extends RetriableException
        #expect(KafkaErrorCode(10).name == "MESSAGE_TOO_LARGE")
        #expect(!KafkaErrorCode.messageTooLarge.isRetriable)           // RecordTooLargeException extends ApiException
        #expect(!KafkaErrorCode.unknownServerError.isRetriable)

        // The complete retriable set: every code whose exception extends RetriableException
        // (directly or via RefreshRetriableException / InvalidMetadataException) in Kafka 4.x.
        let expected: Set<Int16> = [2, 3, 5, 6, 7, 9, 13, 14, 15, 16, 19, 20, 41, 51, 56, 70, 71, 72, 74, 75,
                                    78, 80, 83, 84, 88, 89, 100, 103, 106, 122, 123, 133]
        #expect(Set(KafkaErrorCode.allKnown.filter(\.isRetriable).map(\.rawValue)) == expected)
    }

    @Test func unsupportedVersion() {
        #expect(KafkaErrorCode.unsupportedVersion.rawValue == 35)
        #expect(KafkaErrorCode(35).name == "UNSUPPORTED_VERSION")
        #expect(KafkaErrorCode(35).message == "The version of API is not supported.")
        #expect(!KafkaErrorCode.unsupportedVersion.isRetriable)
    }

    @Test func constantsMatchTheirNames() {
        let pairs: [(KafkaErrorCode, String, Int16)] = [
            (.unknownServerError, "UNKNOWN_SERVER_ERROR", -1),
            (.invalidTopicException, "INVALID_TOPIC_EXCEPTION", 17),
            (.notController, "NOT_CONTROLLER", 41),
            (.kafkaStorageError, "KAFKA_STORAGE_ERROR", 56),
            (.fetchSessionTopicIdError, "FETCH_SESSION_TOPIC_ID_ERROR", 106),
            (.transactionAbortable, "TRANSACTION_ABORTABLE", 120),
            (.shareSessionLimitReached, "SHARE_SESSION_LIMIT_REACHED", 133),
        ]
        for (code, name, raw) in pairs {
            #expect(code.name == name)
            #expect(code.rawValue == raw)
        }
    }

    @Test func allKnownIsOrderedWithoutGaps() {
        let codes = KafkaErrorCode.allKnown.map(\.rawValue)
        for (a, b) in zip(codes, codes.dropFirst()) {
            #expect(a < b, "allKnown not strictly increasing at \(a), \(b)")
        }
        // Errors.java has no gaps between UNKNOWN_SERVER_ERROR (-1) and its highest code.
        #expect(codes == Array(Int16(-1)...133))
        #expect(KafkaErrorCode.allKnown.count == 135)
    }

    @Test func unknownCodes() {
        let unknown = KafkaErrorCode(9999)
        #expect(unknown.name == "UNKNOWN_CODE_9999")
        #expect(!unknown.isRetriable)
        #expect(unknown.message == "")
        #expect(unknown.description == "UNKNOWN_CODE_9999 (9999)")
        #expect(!KafkaErrorCode.allKnown.contains(unknown))
        #expect(KafkaErrorCode(-2).name == "UNKNOWN_CODE_-2")
    }

    @Test func namesAreUniqueAndMessagesPresent() {
        let names = KafkaErrorCode.allKnown.map(\.name)
        #expect(Set(names).count == names.count)
        for code in KafkaErrorCode.allKnown {
            #expect(!code.name.hasPrefix("UNKNOWN_CODE_"))
            #expect(code.name.allSatisfy { $0 == "_" || ("A"..."Z").contains($0) }, "\(code.name)")
            #expect(code == .none || !code.message.isEmpty, "\(code.name) has no message")
        }
    }

    @Test func kafkaError() {
        let error = KafkaError(.unknownTopicOrPartition, "topic 'x' partition 3")
        #expect(error.code.rawValue == 3)
        #expect(error.description
            == "UNKNOWN_TOPIC_OR_PARTITION (3): This server does not host this topic-partition. [topic 'x' partition 3]")
        #expect(KafkaError(.requestTimedOut).description == KafkaErrorCode.requestTimedOut.description)
        #expect(KafkaError(.notController) != KafkaError(.notController, "detail"))
        #expect(throws: KafkaError(.notController)) { throw KafkaError(.notController) }
    }
}
