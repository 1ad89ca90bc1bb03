-- Every record of every collection. Values are opaque bytes (JSON, or sealed data); a version
-- identifies one write (compare-and-swap); expires_at is Unix milliseconds, NULL for no expiry.
CREATE TABLE records (
    collection TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      BLOB    NOT NULL,
    version    INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (collection, key)
) WITHOUT ROWID;

CREATE INDEX records_by_expiry ON records (expires_at) WHERE expires_at IS NOT NULL;
