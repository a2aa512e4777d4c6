-- Chat history: sessions of a user within an account, and their messages, searchable.

CREATE TABLE chat_sessions (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id uuid NOT NULL REFERENCES accounts (id),
    user_id    uuid NOT NULL REFERENCES users (id),
    title      text NOT NULL DEFAULT 'New chat' CHECK (length(title) <= 500),
    model      text,
    metadata   jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE INDEX chat_sessions_owner_idx ON chat_sessions (account_id, user_id, updated_at DESC)
    WHERE deleted_at IS NULL;

CREATE TABLE chat_messages (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id   uuid NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    role         text NOT NULL CHECK (role IN ('system', 'developer', 'user', 'assistant', 'tool')),
    -- As the client sent it: a string or an array of content parts.
    content      jsonb NOT NULL,
    -- The text of `content`, for search.
    content_text text NOT NULL DEFAULT '',
    model        text,
    request_id   text,
    tokens       integer CHECK (tokens >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    search       tsvector GENERATED ALWAYS AS (to_tsvector('simple', content_text)) STORED
);
CREATE INDEX chat_messages_session_idx ON chat_messages (session_id, id);
CREATE INDEX chat_messages_search_idx ON chat_messages USING gin (search);
