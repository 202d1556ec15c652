-- Policies: which events of a template the profile's authenticators vote on.
CREATE TABLE policies (
    id               TEXT PRIMARY KEY,
    profile_id       TEXT NOT NULL,
    name             TEXT NOT NULL,
    template_id      TEXT NOT NULL,
    event_ids        TEXT NOT NULL,
    events           TEXT NOT NULL,
    configuration_id TEXT NOT NULL,
    configuration    TEXT NOT NULL,
    active           INTEGER NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (profile_id, name)
);
