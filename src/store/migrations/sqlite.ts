import type { SqliteDatabase } from '../sqlite-database.js';

// The embedded store's schema, versioned in the repository. PostgreSQL has its own (postgres.ts), with the same
// tables and columns: SQL that the store classes run is written for both.

// Each entry moves the schema one version forward; `PRAGMA user_version` says how far a file is. Entries are never
// edited once released: a file made by any earlier version migrates from its own user_version onwards.
export const SQLITE_MIGRATIONS: readonly string[] = [
  `CREATE TABLE instances (
     sop_instance_uid    TEXT PRIMARY KEY,
     sop_class_uid       TEXT NOT NULL,
     study_instance_uid  TEXT NOT NULL,
     series_instance_uid TEXT,
     transfer_syntax_uid TEXT NOT NULL,
     path                TEXT NOT NULL,
     size_bytes          INTEGER NOT NULL,
     calling_ae          TEXT NOT NULL,
     called_ae           TEXT NOT NULL,
     source_ip           TEXT NOT NULL,
     association_id      TEXT NOT NULL,
     attributes          TEXT NOT NULL,
     received_at         INTEGER NOT NULL
   );
   CREATE INDEX instances_by_study ON instances (study_instance_uid);
   CREATE TABLE studies (
     study_instance_uid TEXT PRIMARY KEY,
     state              TEXT NOT NULL,
     revision           INTEGER NOT NULL DEFAULT 0,
     instance_count     INTEGER NOT NULL DEFAULT 0,
     first_received_at  INTEGER NOT NULL,
     last_received_at   INTEGER NOT NULL,
     calling_ae         TEXT NOT NULL
   );
   CREATE INDEX studies_by_state ON studies (state, last_received_at);
   CREATE TABLE jobs (
     id                 INTEGER PRIMARY KEY AUTOINCREMENT,
     study_instance_uid TEXT NOT NULL REFERENCES studies (study_instance_uid),
     revision           INTEGER NOT NULL,
     state              TEXT NOT NULL,
     instance_count     INTEGER NOT NULL,
     attempts           INTEGER NOT NULL DEFAULT 0,
     next_attempt_at    INTEGER,
     last_error         TEXT,
     created_at         INTEGER NOT NULL,
     updated_at         INTEGER NOT NULL,
     UNIQUE (study_instance_uid, revision)
   );
   CREATE INDEX jobs_by_state ON jobs (state, next_attempt_at);`,
  // The pipeline: what routing decided for a job, each image's outcome, each delivery's progress.
  `ALTER TABLE jobs ADD COLUMN priority TEXT NOT NULL DEFAULT 'normal';
   ALTER TABLE jobs ADD COLUMN rule TEXT;
   ALTER TABLE jobs ADD COLUMN action TEXT;
   ALTER TABLE jobs ADD COLUMN finished_at INTEGER;
   CREATE TABLE job_images (
     job_id           INTEGER NOT NULL REFERENCES jobs (id),
     sop_instance_uid TEXT NOT NULL,
     path             TEXT NOT NULL,
     state            TEXT NOT NULL,
     reason           TEXT,
     result           TEXT,
     updated_at       INTEGER NOT NULL,
     PRIMARY KEY (job_id, sop_instance_uid)
   );
   CREATE TABLE deliveries (
     id              INTEGER PRIMARY KEY AUTOINCREMENT,
     job_id          INTEGER NOT NULL REFERENCES jobs (id),
     kind            TEXT NOT NULL,
     destination     TEXT NOT NULL,
     payload         TEXT NOT NULL,
     state           TEXT NOT NULL,
     attempts        INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL,
     last_error      TEXT,
     updated_at      INTEGER NOT NULL,
     UNIQUE (job_id, kind, destination)
   );
   CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);`,
  // How many times an inference worker died while holding each image: a poison image is failed after a few.
  // And jobs that earlier versions failed because their outputs hit a full disk (ENOSPC: now a wait, not a
  // failure) go back to processing, so that their results are written and delivered after all. Only failed
  // jobs (nothing of them was delivered) of studies retention has not purged (their inputs are still there).
  `ALTER TABLE job_images ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;
   UPDATE jobs SET state = 'processing', finished_at = NULL, next_attempt_at = NULL,
       last_error = 'processed again after an upgrade: its outputs had failed for lack of disk space'
     WHERE state = 'failed' AND action IS NOT NULL
       AND study_instance_uid IN (SELECT study_instance_uid FROM studies WHERE state != 'purged')
       AND EXISTS (SELECT 1 FROM job_images i WHERE i.job_id = jobs.id AND i.state = 'failed' AND i.reason LIKE '%ENOSPC%');
   UPDATE job_images SET state = 'pending', reason = NULL
     WHERE state = 'failed' AND reason LIKE '%ENOSPC%' AND job_id IN (SELECT id FROM jobs WHERE state = 'processing');`,
  // The operations console: every delivery try and admin action on a delivery (its story), the audit trail of
  // admin actions (issue 17 adds DICOM/HL7/security categories to the same table), local users and their
  // sessions (tokens stored as SHA-256 only, so a copy of the file opens no session). attempts_at_release: the
  // attempts made before an admin's latest release, so that a released delivery gets a fresh retry budget while
  // `attempts` keeps counting every try.
  `CREATE TABLE delivery_attempts (
     delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
     attempt     INTEGER NOT NULL,
     at          INTEGER NOT NULL,
     outcome     TEXT NOT NULL,
     detail      TEXT
   );
   CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, at);
   CREATE TABLE audit_events (
     id       INTEGER PRIMARY KEY AUTOINCREMENT,
     at       INTEGER NOT NULL,
     category TEXT NOT NULL,
     action   TEXT NOT NULL,
     user     TEXT,
     role     TEXT,
     address  TEXT,
     target   TEXT,
     outcome  TEXT NOT NULL,
     before   TEXT,
     after    TEXT,
     detail   TEXT
   );
   CREATE INDEX audit_events_by_time ON audit_events (at);
   CREATE INDEX audit_events_by_category ON audit_events (category, at);
   CREATE TABLE users (
     name          TEXT PRIMARY KEY,
     password_hash TEXT NOT NULL,
     role          TEXT NOT NULL,
     created_at    INTEGER NOT NULL,
     updated_at    INTEGER NOT NULL,
     disabled      INTEGER NOT NULL DEFAULT 0
   );
   CREATE TABLE sessions (
     token_hash   TEXT PRIMARY KEY,
     user         TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
     role         TEXT NOT NULL,
     address      TEXT NOT NULL,
     created_at   INTEGER NOT NULL,
     last_seen_at INTEGER NOT NULL,
     expires_at   INTEGER NOT NULL
   );
   CREATE INDEX sessions_by_user ON sessions (user);
   ALTER TABLE deliveries ADD COLUMN attempts_at_release INTEGER NOT NULL DEFAULT 0;`,
  // v5 (issue 17): the audit forwarder's cursor. audit_events ids only grow and SQLite serialises writers, so
  // "every row with id > last_id, in id order" is exactly the rows not yet sent, in the order they were recorded.
  // One row per forwarding channel ('syslog'); it is created when the channel is first configured.
  `CREATE TABLE audit_forwarding (
     channel     TEXT PRIMARY KEY,
     last_id     INTEGER NOT NULL,
     started_at  INTEGER NOT NULL,
     updated_at  INTEGER NOT NULL
   );`,
  // v6 (issue 20): the store's identity, as PostgreSQL's `cluster` table has it: one row, made once. The spool
  // carries the same id in a marker file (store/spool-marker.ts), so a gateway started on another install's spool,
  // or on this spool with another store, refuses to start. The id is random: lower(hex(randomblob(16))).
  `CREATE TABLE cluster (
     id         TEXT PRIMARY KEY,
     created_at INTEGER NOT NULL
   );
   INSERT INTO cluster (id, created_at)
     VALUES (lower(hex(randomblob(16))), CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));`,
  // v7 (issue 20): nodes that share work. Each node's row (its roles as a comma-separated list, its heartbeat);
  // a job or delivery being worked on is leased to one node until lease_expires_at, renewed while it works. One
  // SQLite node leases to itself; the columns are the same as PostgreSQL's so that the store's SQL is one.
  `CREATE TABLE nodes (
     name         TEXT PRIMARY KEY,
     roles        TEXT NOT NULL,
     started_at   INTEGER NOT NULL,
     heartbeat_at INTEGER NOT NULL,
     draining     INTEGER NOT NULL DEFAULT 0
   );
   ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
   ALTER TABLE jobs ADD COLUMN lease_expires_at INTEGER;
   ALTER TABLE deliveries ADD COLUMN lease_owner TEXT;
   ALTER TABLE deliveries ADD COLUMN lease_expires_at INTEGER;
   CREATE INDEX jobs_by_lease ON jobs (lease_owner);
   CREATE INDEX deliveries_by_lease ON deliveries (lease_owner);`,
  // v8: storage commitment reports that reached a node other than the one waiting for them (a PACS sends its report
  // to the gateway's AE, behind a load balancer any receive node): kept here until the waiting node takes them.
  `CREATE TABLE commitment_reports (
     transaction_uid TEXT PRIMARY KEY,
     report          TEXT NOT NULL,
     received_at     INTEGER NOT NULL,
     received_by     TEXT NOT NULL
   );
   CREATE INDEX commitment_reports_by_age ON commitment_reports (received_at);`,
];

/**
 * Brings the file to the newest version: each missing step in its own transaction with the user_version it leads
 * to, so a process killed mid-way resumes at the step that did not commit. `upTo` stops earlier (a file as an older
 * release left it, for tests of the upgrade path).
 */
export function migrateSqlite(db: SqliteDatabase, upTo = SQLITE_MIGRATIONS.length): void {
  const current = Number(db.pragma('user_version'));
  for (let version = current; version < upTo; version += 1) {
    const sql = SQLITE_MIGRATIONS[version];
    if (sql === undefined) break;
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}
