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
-- reply lost with the connection) finds its rows instead of writing them twice.
CREATE TABLE issue_journal (
    project_id text NOT NULL,
    seq bigint NOT NULL CHECK (seq > 0),
    writer text NOT NULL,
    batch bigint NOT NULL,
    event text NOT NULL,
    PRIMARY KEY (project_id, seq)
);
CREATE INDEX issue_journal_by_append ON issue_journal (project_id, writer, batch);

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

-- Appends `events` to `project`'s issue journal as one batch and returns every entry
-- after `after` (the caller's last seen sequence number): other writers' entries first,
-- in order, then the batch's own (`own`). The project row is locked for the append, so
-- sequence numbers are gap-free and in commit order. A batch already stored (a retry) is
-- returned, not written again. A journal that ends before `after` lost entries the
-- caller saw (a server that crashed with unsynchronised commits): refused.
CREATE FUNCTION autopack_issue_append(
    p_project text, p_after bigint, p_writer text, p_batch bigint, p_events text[]
) RETURNS TABLE (seq bigint, event text, own boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_last bigint;
BEGIN
    INSERT INTO issue_projects (project_id) VALUES (p_project) ON CONFLICT DO NOTHING;
    SELECT p.last_seq INTO v_last FROM issue_projects p
        WHERE p.project_id = p_project FOR UPDATE;
    IF v_last < p_after THEN
        RAISE EXCEPTION 'issue journal of project % ends at % but entry % was seen', p_project, v_last, p_after
            USING ERRCODE = 'AP001';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM issue_journal j
                   WHERE j.project_id = p_project AND j.writer = p_writer AND j.batch = p_batch) THEN
        INSERT INTO issue_journal (project_id, seq, writer, batch, event)
            SELECT p_project, v_last + t.ord, p_writer, p_batch, t.e
            FROM unnest(p_events) WITH ORDINALITY AS t(e, ord);
        UPDATE issue_projects SET last_seq = v_last + coalesce(array_length(p_events, 1), 0)
            WHERE project_id = p_project;
    END IF;
    -- Two index scans (by sequence, and by append for a retried batch the caller has
    -- seen already); one condition with OR would scan the whole journal.
    RETURN QUERY
        SELECT j.seq, j.event, (j.writer = p_writer AND j.batch = p_batch)
        FROM issue_journal j
        WHERE j.project_id = p_project AND j.seq > p_after
        UNION ALL
        SELECT j.seq, j.event, true
        FROM issue_journal j
        WHERE j.project_id = p_project AND j.writer = p_writer AND j.batch = p_batch
          AND j.seq <= p_after
        ORDER BY 1;
END
$$;
