-- Console sign-in sessions (issue 15). A person signs in once with their personal API token;
-- the browser then holds only a session cookie. Stored as the SHA-256 of the session secret,
-- tied to the token it was opened with, so revoking the token ends its sessions too.
CREATE TABLE console_sessions (
    session_hash TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_token ON console_sessions (token_hash);
