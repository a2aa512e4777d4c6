-- Chat history threads (docs/api.md, chat history): a message may name the message it
-- answers or follows (`parent_id`), so one session holds a thread with branches; `extra`
-- keeps the message fields besides `content` that a replay needs (`name`, `tool_calls`,
-- `tool_call_id`, `refusal`). Injection walks a thread from its newest message back
-- through `parent_id`, newest turns first.
ALTER TABLE chat_messages
    ADD COLUMN parent_id bigint REFERENCES chat_messages (id) ON DELETE CASCADE,
    ADD COLUMN extra jsonb NOT NULL DEFAULT '{}'::jsonb;

-- A parent must be in the same session: checked on insert by the gateway's statement
-- (it selects the parent through the session); this index serves the thread walk.
CREATE INDEX chat_messages_parent_idx ON chat_messages (parent_id) WHERE parent_id IS NOT NULL;

-- Listing a user's sessions newest first with a stable cursor (updated_at, id).
DROP INDEX chat_sessions_owner_idx;
CREATE INDEX chat_sessions_owner_idx ON chat_sessions (account_id, user_id, updated_at DESC, id DESC)
    WHERE deleted_at IS NULL;

-- Append messages to a session of (account, user), each the child of the one before;
-- the first one's parent is `p_parent`, or, when that is NULL, the session's newest
-- message. Each element of `p_messages`: role, content, content_text, extra, model,
-- request_id, tokens. Raises GW404 when the session is not the caller's (or deleted) and
-- GW400 when `p_parent` is not a message of the session. The session row is locked so
-- that concurrent appends each see the other's newest message.
CREATE FUNCTION chat_messages_append(
    p_session uuid, p_account uuid, p_user uuid, p_parent bigint, p_messages jsonb
) RETURNS bigint[]
LANGUAGE plpgsql AS $$
DECLARE
    parent  bigint := p_parent;
    message jsonb;
    new_id  bigint;
    ids     bigint[] := '{}';
BEGIN
    PERFORM 1 FROM chat_sessions
     WHERE id = p_session AND account_id = p_account AND user_id = p_user
       AND deleted_at IS NULL
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'chat session not found' USING ERRCODE = 'GW404';
    END IF;
    IF parent IS NULL THEN
        SELECT max(id) INTO parent FROM chat_messages WHERE session_id = p_session;
    ELSIF NOT EXISTS (SELECT 1 FROM chat_messages WHERE id = parent AND session_id = p_session) THEN
        RAISE EXCEPTION 'parent message not in the session' USING ERRCODE = 'GW400';
    END IF;
    FOR message IN SELECT value FROM jsonb_array_elements(p_messages) LOOP
        INSERT INTO chat_messages
               (session_id, parent_id, role, content, content_text, extra, model, request_id,
                tokens)
        VALUES (p_session, parent, message->>'role', message->'content',
                COALESCE(message->>'content_text', ''), COALESCE(message->'extra', '{}'),
                message->>'model', message->>'request_id', (message->>'tokens')::integer)
        RETURNING id INTO new_id;
        ids := ids || new_id;
        parent := new_id;
    END LOOP;
    UPDATE chat_sessions SET updated_at = now() WHERE id = p_session;
    RETURN ids;
END;
$$;

-- The chat path's save, run in the statement that settles the request: whatever goes
-- wrong with the history (the session deleted meanwhile, a bad value) must never undo
-- or fail the settlement, so it is caught here (a subtransaction) and reported as -1.
CREATE FUNCTION chat_history_save(
    p_session uuid, p_account uuid, p_user uuid, p_parent bigint, p_messages jsonb
) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    RETURN cardinality(chat_messages_append(p_session, p_account, p_user, p_parent, p_messages));
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'chat history not saved: % (%)', SQLERRM, SQLSTATE;
    RETURN -1;
END;
$$;
