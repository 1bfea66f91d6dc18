import Foundation
import GRDB

/// Where an upload's job stands.
public enum JobState: String, Codable, Sendable, DatabaseValueConvertible {
    case queued, running, done, failed, interrupted
}

/// One uploaded file and the analysis of it. Its files live in `<data>/jobs/<id>/`; the ID is generated, never
/// taken from a request, so no request names a path.
public struct Job: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "job"

    public var id: String
    /// The uploaded file's name as the user gave it: shown, never used as a path.
    public var name: String
    public var isImage: Bool
    public var state: JobState
    public var progress: Double
    public var error: String?
    /// Seconds of media, for the progress of a video (nil for photos).
    public var duration: Double?
    /// The analysis options as command-line arguments of `fer-annotate`, JSON-encoded.
    public var options: [String]
    public var created: Date
    public var updated: Date
}

/// The job table in SQLite (`<data>/jobs.sqlite`) through GRDB: jobs and their results survive a restart.
public final class JobStore: Sendable {
    private let database: DatabaseQueue

    public init(path: String) throws {
        database = try DatabaseQueue(path: path)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: Job.databaseTableName) { table in
                table.primaryKey("id", .text)
                table.column("name", .text).notNull()
                table.column("isImage", .boolean).notNull()
                table.column("state", .text).notNull()
                table.column("progress", .double).notNull()
                table.column("error", .text)
                table.column("duration", .double)
                table.column("options", .text).notNull()
                table.column("created", .datetime).notNull()
                table.column("updated", .datetime).notNull()
            }
        }
        try migrator.migrate(database)
    }

    public func insert(_ job: Job) throws {
        try database.write { db in try job.insert(db) }
    }

    public func job(_ id: String) throws -> Job? {
        try database.read { db in try Job.fetchOne(db, key: id) }
    }

    /// Newest first.
    public func all() throws -> [Job] {
        try database.read { db in try Job.order(Column("created").desc).fetchAll(db) }
    }

    /// Changes a job in place; nil when it no longer exists (deleted meanwhile).
    @discardableResult
    public func update(_ id: String, _ change: @Sendable (inout Job) -> Void) throws -> Job? {
        try database.write { db in
            guard var job = try Job.fetchOne(db, key: id) else { return nil }
            change(&job)
            job.updated = Date()
            try job.update(db)
            return job
        }
    }

    public func delete(_ id: String) throws {
        _ = try database.write { db in try Job.deleteOne(db, key: id) }
    }

    /// After a stop: jobs that were running are marked interrupted (their partial outputs stay playable); the
    /// queued ones are returned to be run again.
    public func recoverAfterRestart() throws -> [Job] {
        try database.write { db in
            for var job in try Job.filter(Column("state") == JobState.running.rawValue).fetchAll(db) {
                job.state = .interrupted
                job.error = job.error ?? "the server stopped while this job ran"
                job.updated = Date()
                try job.update(db)
            }
            return try Job.filter(Column("state") == JobState.queued.rawValue).order(Column("created")).fetchAll(db)
        }
    }
}
