-- Autopack's stores, schema version 1. Documents are kept as text, not jsonb: a journal
-- entry must come back byte for byte as it was appended (jsonb reorders keys), and a
-- strategy is frozen by its exact bytes.

-- Run journals (RunStore): one row per input, numbered 1, 2, 3, ... per run.
CREATE TABLE run_journal (
    run_id text NOT NULL,
    seq bigint NOT NULL CHECK (seq > 0),
    entry text NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- The runs that have a journal, and how far each was last made durable.
CREATE TABLE runs (
    run_id text PRIMARY KEY,
    synced_seq bigint NOT NULL DEFAULT 0,
    synced_at timestamptz
);

-- The issue ledger (IssueStore), one journal per project. The project's row is the lock
-- that orders its writers; `last_seq` is the last sequence number handed out.
CREATE TABLE issue_projects (
    project_id text PRIMARY KEY,
    last_seq bigint NOT NULL DEFAULT 0
);

-- `writer` and `batch` identify the append that wrote a row, so a retried append (its
-- reply lost with the connection) finds its rows instead of writing them twice. Only a
-- retry looks them up, so they carry no index of their own: every append would pay for it.
CREATE TABLE issue_journal (
    project_id text NOT NULL,
    seq bigint NOT NULL CHECK (seq > 0),
    writer text NOT NULL,
    batch bigint NOT NULL,
    event text NOT NULL,
    PRIMARY KEY (project_id, seq)
);

CREATE TABLE issue_checkpoints (
    project_id text PRIMARY KEY,
    through bigint NOT NULL CHECK (through >= 0),
    snapshot text NOT NULL
);

-- Rulesets (RulesetStore): versions 1, 2, 3, ... per project, never changed once saved.
CREATE TABLE rulesets (
    project_id text NOT NULL,
    version integer NOT NULL CHECK (version > 0),
    ruleset text NOT NULL,
    saved_by text NOT NULL UNIQUE,
    PRIMARY KEY (project_id, version)
);

-- Frozen strategies (StrategyStore), by run and version.
CREATE TABLE strategies (
    run_id text NOT NULL,
    version integer NOT NULL,
    strategy text NOT NULL,
    PRIMARY KEY (run_id, version)
);

-- Run leases: one live writer per run. `token` is the holder's own (a retried acquire
-- recognises its row); `expires_at` is judged by the server's clock, so hosts whose
-- clocks disagree still agree on who holds a run.
CREATE TABLE run_leases (
    run_id text PRIMARY KEY,
    token text NOT NULL,
    holder text NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Appends `events` to `project`'s issue journal as one batch and returns the sequence
-- number of its first entry. The project row is locked for the append, so sequence
-- numbers are gap-free and in commit order. A retried batch (`p_retry`) that is stored
-- already is found under the lock, not written again. A journal that ends before
-- `p_after` lost entries the caller saw (a server that crashed with unsynchronised
-- commits): refused.
CREATE FUNCTION autopack_issue_append(
    p_project text, p_after bigint, p_writer text, p_batch bigint, p_events text[],
    p_retry boolean
) RETURNS bigint
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_count bigint := coalesce(array_length(p_events, 1), 0);
    v_last bigint;
    v_first bigint;
BEGIN
    IF p_retry THEN
        INSERT INTO issue_projects (project_id) VALUES (p_project) ON CONFLICT DO NOTHING;
        PERFORM 1 FROM issue_projects p WHERE p.project_id = p_project FOR UPDATE;
        SELECT min(j.seq) INTO v_first FROM issue_journal j
            WHERE j.project_id = p_project AND j.writer = p_writer AND j.batch = p_batch;
        IF v_first IS NOT NULL THEN
            RETURN v_first;
        END IF;
    END IF;
    UPDATE issue_projects p SET last_seq = p.last_seq + v_count
        WHERE p.project_id = p_project RETURNING p.last_seq - v_count INTO v_last;
    IF NOT FOUND THEN
        INSERT INTO issue_projects (project_id) VALUES (p_project) ON CONFLICT DO NOTHING;
        UPDATE issue_projects p SET last_seq = p.last_seq + v_count
            WHERE p.project_id = p_project RETURNING p.last_seq - v_count INTO v_last;
    END IF;
    IF v_last < p_after THEN
        RAISE EXCEPTION 'issue journal of project % ends at % but entry % was seen', p_project, v_last, p_after
            USING ERRCODE = 'AP001';
    END IF;
    INSERT INTO issue_journal (project_id, seq, writer, batch, event)
        SELECT p_project, v_last + t.ord, p_writer, p_batch, t.e
        FROM unnest(p_events) WITH ORDINALITY AS t(e, ord);
    RETURN v_last + 1;
END
$$;
