/// The embedded schema migrations. Versions 1–3 are the Rust Chronicle's schema, so a database it created
/// is upgraded in place; later versions are ours. Each version is a list of statements.
enum Migrations {
    static let sqlite: [[String]] = [
        // 1: init
        [
            """
            CREATE TABLE chronicle_pricing_plans (id bigint PRIMARY KEY, provider bigint, start_date bigint,
              end_date bigint, per_input_token numeric, per_output_token numeric, per_request numeric)
            """,
            """
            CREATE TABLE chronicle_events (id text PRIMARY KEY, event_type text, organization_id text, project_id text,
              user_id text, chat_request text, chat_response text, error text, provider text, model text,
              application text, environment text, request_organization_id text, request_project_id text,
              request_user_id text, workflow_id text, workflow_name text, run_id text, step_id text, step_index int,
              prompt_id text, prompt_version int, meta text, response_meta text, retries int, rate_limited bool,
              request_latency_ms int, total_latency_ms int,
              pricing_plan bigint REFERENCES chronicle_pricing_plans(id), created_at int NOT NULL)
            """,
            "CREATE INDEX chronicle_events_workflow_id_idx ON chronicle_events (workflow_id)",
        ],
        // 2: configuration tables
        [
            """
            CREATE TABLE chronicle_custom_providers (id integer PRIMARY KEY, name text NOT NULL, label text,
              url text NOT NULL, api_key text, api_key_source text, format text NOT NULL, headers text, prefix text)
            """,
            "CREATE TABLE chronicle_aliases (id integer PRIMARY KEY, name text NOT NULL, random_order bool NOT NULL DEFAULT false)",
            """
            CREATE TABLE chronicle_alias_providers (id integer PRIMARY KEY,
              alias_id bigint REFERENCES chronicle_aliases(id) ON DELETE CASCADE, sort int NOT NULL DEFAULT 0,
              model text NOT NULL, provider text NOT NULL, api_key_name text)
            """,
            "CREATE TABLE chronicle_api_keys (id integer PRIMARY KEY, name text, source text, value text)",
        ],
        // 3: runs and steps
        [
            """
            CREATE TABLE chronicle_runs (id text PRIMARY KEY, name text NOT NULL, description text, application text,
              environment text, input text, output text, status text NOT NULL, trace_id text, span_id text, tags text,
              info text, updated_at bigint NOT NULL, created_at bigint NOT NULL)
            """,
            "CREATE INDEX chronicle_runs_name_created_at_idx ON chronicle_runs (name, created_at DESC)",
            "CREATE INDEX chronicle_runs_name_updated_at_idx ON chronicle_runs (name, updated_at DESC)",
            "CREATE INDEX chronicle_runs_env_app_created_at_idx ON chronicle_runs (environment, application, created_at DESC)",
            "CREATE INDEX chronicle_runs_env_app_updated_at_idx ON chronicle_runs (environment, application, updated_at DESC)",
            "CREATE INDEX chronicle_runs_updated_at_idx ON chronicle_runs (updated_at DESC)",
            "CREATE INDEX chronicle_runs_created_at_idx ON chronicle_runs (created_at DESC)",
            """
            CREATE TABLE chronicle_steps (id text PRIMARY KEY, run_id text NOT NULL, type text NOT NULL,
              parent_step text, name text, input text, output text, status text NOT NULL, tags text, info text,
              span_id text, start_time bigint NOT NULL, end_time bigint)
            """,
            "CREATE INDEX chronicle_steps_run_id_idx ON chronicle_steps (run_id)",
            "CREATE INDEX chronicle_events_run_id_created_at_idx ON chronicle_events (run_id, created_at DESC)",
        ],
        // 4: millisecond timestamps, usage and status columns, step errors, NULL model for events, indexes.
        [
            "UPDATE chronicle_events SET created_at = created_at * 1000",
            "UPDATE chronicle_runs SET created_at = created_at * 1000, updated_at = updated_at * 1000",
            "UPDATE chronicle_steps SET start_time = start_time * 1000, end_time = end_time * 1000",
            "UPDATE chronicle_events SET model = NULL WHERE model = ''",
            "ALTER TABLE chronicle_events ADD COLUMN input_tokens int",
            "ALTER TABLE chronicle_events ADD COLUMN output_tokens int",
            "ALTER TABLE chronicle_events ADD COLUMN total_tokens int",
            "ALTER TABLE chronicle_events ADD COLUMN cached_tokens int",
            "ALTER TABLE chronicle_events ADD COLUMN reasoning_tokens int",
            "ALTER TABLE chronicle_events ADD COLUMN http_status int",
            "ALTER TABLE chronicle_events ADD COLUMN streamed bool",
            "ALTER TABLE chronicle_events ADD COLUMN overhead_ms real",
            "ALTER TABLE chronicle_steps ADD COLUMN error text",
            "CREATE INDEX chronicle_events_created_at_idx ON chronicle_events (created_at DESC)",
            "CREATE INDEX chronicle_events_app_env_created_at_idx ON chronicle_events (application, environment, created_at DESC)",
            "CREATE INDEX chronicle_events_user_created_at_idx ON chronicle_events (request_user_id, created_at DESC)",
            "CREATE INDEX chronicle_events_provider_model_created_at_idx ON chronicle_events (provider, model, created_at DESC)",
            "CREATE INDEX chronicle_steps_start_time_idx ON chronicle_steps (start_time)",
        ],
        // 5: the gateway key each call was made with.
        [
            "ALTER TABLE chronicle_events ADD COLUMN gateway_key text",
            "CREATE INDEX chronicle_events_gateway_key_created_at_idx ON chronicle_events (gateway_key, created_at DESC)",
        ],
        // 6: the same constraints as PostgreSQL (see `sameConstraints`). SQLite already has NOT NULL provider
        // and run names and the cascade; alias names become unique, after renaming any duplicates.
        [
            "UPDATE chronicle_aliases SET name = name || '#' || id WHERE id NOT IN (SELECT min(id) FROM chronicle_aliases GROUP BY name)",
            "CREATE UNIQUE INDEX chronicle_aliases_name_key ON chronicle_aliases (name)",
        ],
        // 7: the event time of a step's latest status, so that a late event cannot overwrite newer state.
        [
            "ALTER TABLE chronicle_steps ADD COLUMN updated_at bigint NOT NULL DEFAULT 0",
            "UPDATE chronicle_steps SET updated_at = COALESCE(end_time, start_time)",
        ],
        // 8: what each call cost, and the hourly and daily usage rollups the usage API reads (filled from the
        // calls already stored; they have no cost, since no price was known when they were written).
        [
            "ALTER TABLE chronicle_events ADD COLUMN cost_usd double precision",
            UsageRollup.hourly.createTable(withoutRowID: true),
            UsageRollup.daily.createTable(withoutRowID: true),
            UsageRollup.hourly.backfill(SQLiteDialect()),
            UsageRollup.daily.backfill(SQLiteDialect()),
        ],
        // 9: the dashboard's calls list filtered by application alone: newest first from this index, where the
        // (application, environment, created_at) index would have every call of the application sorted.
        [
            "CREATE INDEX IF NOT EXISTS chronicle_events_app_created_at_idx ON chronicle_events (application, created_at DESC)",
        ],
        // 10: configuration managed through the admin API and shared by replicas. Gateway keys as SHA-256
        // digests only; the audit trail of admin changes; the models a custom provider lists; the replica
        // that served each call; and the per-replica counters replicas exchange so that a key's limits hold
        // for the whole fleet (kind, subject, window, replica -> value).
        [
            """
            CREATE TABLE chronicle_gateway_keys (name text PRIMARY KEY, key_sha256 text NOT NULL UNIQUE,
              requests_per_minute int, tokens_per_minute int, max_concurrent_requests int,
              max_cost_usd_per_day double precision, max_cost_usd_per_month double precision,
              admin bool NOT NULL DEFAULT false, created_at bigint NOT NULL)
            """,
            """
            CREATE TABLE chronicle_admin_audit (id integer PRIMARY KEY, created_at bigint NOT NULL, actor text NOT NULL,
              action text NOT NULL, kind text NOT NULL, name text NOT NULL, before text, after text)
            """,
            "CREATE INDEX chronicle_admin_audit_created_at_idx ON chronicle_admin_audit (created_at DESC)",
            "ALTER TABLE chronicle_custom_providers ADD COLUMN models text",
            "ALTER TABLE chronicle_events ADD COLUMN instance_id text",
            """
            CREATE TABLE chronicle_limit_counters (kind text NOT NULL, subject text NOT NULL, window_start bigint NOT NULL,
              instance_id text NOT NULL, value double precision NOT NULL, updated_at bigint NOT NULL,
              PRIMARY KEY (kind, subject, window_start, instance_id))
            """,
        ],
    ]

    /// Version 6 makes both backends enforce the same constraints, the stricter of the two each time:
    /// - alias names are unique: requests name an alias, and two of one name would route by row order.
    ///   Duplicates an older SQLite database holds are renamed `name#id` (the oldest keeps its name).
    /// - a custom provider's name is NOT NULL: a provider is chosen by its name, so one without a name could
    ///   never be used. A PostgreSQL row without one becomes `unnamed-<id>`.
    /// - deleting an alias deletes its provider rows: they mean nothing without it, and a plain reference
    ///   would refuse the delete instead.
    /// - a run's name is NOT NULL: `''` already stands for "not known yet" (an update that arrived before
    ///   its start), so readers see one representation, not two.
    static let sameConstraints = 6

    static let postgres: [[String]] = [
        // 1: init
        [
            """
            CREATE TABLE chronicle_pricing_plans (id uuid PRIMARY KEY, provider uuid, start_date date, end_date date,
              per_input_token numeric, per_output_token numeric, per_request numeric)
            """,
            """
            CREATE TABLE chronicle_events (id uuid PRIMARY KEY, event_type text, organization_id text, project_id text,
              user_id text, chat_request jsonb NOT NULL, chat_response jsonb, error jsonb, provider text, model text,
              application text, environment text, request_organization_id text, request_project_id text,
              request_user_id text, workflow_id text, workflow_name text, run_id uuid, step_id uuid, step_index int,
              prompt_id text, prompt_version int, meta jsonb, response_meta jsonb, retries int, rate_limited bool,
              request_latency_ms int, total_latency_ms int,
              pricing_plan uuid REFERENCES chronicle_pricing_plans(id), created_at timestamptz NOT NULL DEFAULT now())
            """,
            "CREATE INDEX chronicle_events_workflow_id_idx ON chronicle_events (workflow_id)",
        ],
        // 2: configuration tables
        [
            """
            CREATE TABLE chronicle_custom_providers (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text,
              label text, url text NOT NULL, api_key text, api_key_source text, format jsonb NOT NULL, headers jsonb,
              prefix text)
            """,
            """
            CREATE TABLE chronicle_aliases (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
              name text NOT NULL UNIQUE, random_order bool NOT NULL DEFAULT false)
            """,
            """
            CREATE TABLE chronicle_alias_providers (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
              alias_id bigint REFERENCES chronicle_aliases(id), sort int NOT NULL DEFAULT 0, model text NOT NULL,
              provider text NOT NULL, api_key_name text)
            """,
            """
            CREATE TABLE chronicle_api_keys (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text,
              source text, value text)
            """,
        ],
        // 3: runs and steps
        [
            """
            CREATE TABLE chronicle_runs (id uuid PRIMARY KEY, name text, description text, application text,
              environment text, input jsonb, output jsonb, status text NOT NULL, trace_id text, span_id text,
              tags text[], info jsonb, updated_at timestamptz NOT NULL DEFAULT now(),
              created_at timestamptz NOT NULL DEFAULT now())
            """,
            "CREATE INDEX chronicle_runs_name_created_at_idx ON chronicle_runs (name, created_at DESC)",
            "CREATE INDEX chronicle_runs_name_updated_at_idx ON chronicle_runs (name, updated_at DESC)",
            "CREATE INDEX chronicle_runs_app_env_created_at_idx ON chronicle_runs (application, environment, created_at DESC)",
            "CREATE INDEX chronicle_runs_app_env_updated_at_idx ON chronicle_runs (application, environment, updated_at DESC)",
            "CREATE INDEX chronicle_runs_updated_at_idx ON chronicle_runs (updated_at DESC)",
            "CREATE INDEX chronicle_runs_created_at_idx ON chronicle_runs (created_at DESC)",
            "CREATE INDEX chronicle_runs_tags_idx ON chronicle_runs USING gin (tags)",
            """
            CREATE TABLE chronicle_steps (id uuid PRIMARY KEY, run_id uuid NOT NULL, type text NOT NULL,
              parent_step uuid, name text, input jsonb, output jsonb, status text NOT NULL, tags text[], info jsonb,
              span_id text, start_time timestamptz NOT NULL DEFAULT now(), end_time timestamptz)
            """,
            "CREATE INDEX chronicle_steps_run_id_idx ON chronicle_steps (run_id)",
            "CREATE INDEX chronicle_steps_tags_idx ON chronicle_steps USING gin (tags)",
            "CREATE INDEX chronicle_events_run_id_created_at_idx ON chronicle_events (run_id, created_at DESC)",
        ],
        // 4: usage and status columns, step errors, NULL model for events, merge-patch function, indexes.
        [
            """
            ALTER TABLE chronicle_events ADD COLUMN input_tokens int, ADD COLUMN output_tokens int,
              ADD COLUMN total_tokens int, ADD COLUMN cached_tokens int, ADD COLUMN reasoning_tokens int,
              ADD COLUMN http_status int, ADD COLUMN streamed bool, ADD COLUMN overhead_ms double precision
            """,
            "ALTER TABLE chronicle_steps ADD COLUMN error jsonb",
            "UPDATE chronicle_events SET model = NULL WHERE model = ''",
            """
            CREATE OR REPLACE FUNCTION chronicle_json_merge_patch(target jsonb, patch jsonb) RETURNS jsonb
            LANGUAGE plpgsql IMMUTABLE AS $$
            BEGIN
              IF patch IS NULL THEN RETURN target; END IF;
              IF jsonb_typeof(patch) <> 'object' THEN RETURN patch; END IF;
              IF target IS NULL OR jsonb_typeof(target) <> 'object' THEN target := '{}'::jsonb; END IF;
              RETURN COALESCE((SELECT jsonb_object_agg(merged.key, merged.value) FROM (
                SELECT t.key, t.value FROM jsonb_each(target) t WHERE NOT (patch ? t.key)
                UNION ALL
                SELECT p.key, chronicle_json_merge_patch(target -> p.key, p.value) FROM jsonb_each(patch) p
                  WHERE jsonb_typeof(p.value) <> 'null'
              ) merged), '{}'::jsonb);
            END
            $$
            """,
            "CREATE INDEX chronicle_events_created_at_idx ON chronicle_events (created_at DESC)",
            "CREATE INDEX chronicle_events_app_env_created_at_idx ON chronicle_events (application, environment, created_at DESC)",
            "CREATE INDEX chronicle_events_user_created_at_idx ON chronicle_events (request_user_id, created_at DESC)",
            "CREATE INDEX chronicle_events_provider_model_created_at_idx ON chronicle_events (provider, model, created_at DESC)",
            "CREATE INDEX chronicle_steps_start_time_idx ON chronicle_steps (start_time)",
        ],
        // 5: the gateway key each call was made with.
        [
            "ALTER TABLE chronicle_events ADD COLUMN gateway_key text",
            "CREATE INDEX chronicle_events_gateway_key_created_at_idx ON chronicle_events (gateway_key, created_at DESC)",
        ],
        // 6: the same constraints as SQLite (see `sameConstraints`). Alias names are already unique here;
        // provider and run names become NOT NULL, and alias providers go with their alias.
        [
            "UPDATE chronicle_custom_providers SET name = 'unnamed-' || id WHERE name IS NULL",
            "ALTER TABLE chronicle_custom_providers ALTER COLUMN name SET NOT NULL",
            "UPDATE chronicle_runs SET name = '' WHERE name IS NULL",
            "ALTER TABLE chronicle_runs ALTER COLUMN name SET NOT NULL",
            """
            DO $$
            DECLARE constraint_name text;
            BEGIN
              FOR constraint_name IN SELECT conname FROM pg_constraint
                WHERE conrelid = 'chronicle_alias_providers'::regclass AND contype = 'f'
              LOOP
                EXECUTE format('ALTER TABLE chronicle_alias_providers DROP CONSTRAINT %I', constraint_name);
              END LOOP;
            END
            $$
            """,
            """
            ALTER TABLE chronicle_alias_providers ADD CONSTRAINT chronicle_alias_providers_alias_id_fkey
              FOREIGN KEY (alias_id) REFERENCES chronicle_aliases(id) ON DELETE CASCADE
            """,
        ],
        // 7: the event time of a step's latest status, so that a late event cannot overwrite newer state.
        [
            "ALTER TABLE chronicle_steps ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now()",
            "UPDATE chronicle_steps SET updated_at = COALESCE(end_time, start_time)",
        ],
        // 8: what each call cost, and the hourly and daily usage rollups the usage API reads (filled from the
        // calls already stored; they have no cost, since no price was known when they were written).
        [
            "ALTER TABLE chronicle_events ADD COLUMN cost_usd double precision",
            UsageRollup.hourly.createTable(withoutRowID: false),
            UsageRollup.daily.createTable(withoutRowID: false),
            UsageRollup.hourly.backfill(PostgresDialect()),
            UsageRollup.daily.backfill(PostgresDialect()),
        ],
        // 9: the dashboard's calls list filtered by application alone: newest first from this index, where the
        // (application, environment, created_at) index would have every call of the application sorted.
        [
            "CREATE INDEX IF NOT EXISTS chronicle_events_app_created_at_idx ON chronicle_events (application, created_at DESC)",
        ],
        // 10: configuration managed through the admin API and shared by replicas. Gateway keys as SHA-256
        // digests only; the audit trail of admin changes; the models a custom provider lists; the replica
        // that served each call; and the per-replica counters replicas exchange so that a key's limits hold
        // for the whole fleet (kind, subject, window, replica -> value). Times here are Unix milliseconds.
        [
            """
            CREATE TABLE chronicle_gateway_keys (name text PRIMARY KEY, key_sha256 text NOT NULL UNIQUE,
              requests_per_minute int, tokens_per_minute int, max_concurrent_requests int,
              max_cost_usd_per_day double precision, max_cost_usd_per_month double precision,
              admin bool NOT NULL DEFAULT false, created_at bigint NOT NULL)
            """,
            """
            CREATE TABLE chronicle_admin_audit (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
              created_at bigint NOT NULL, actor text NOT NULL, action text NOT NULL, kind text NOT NULL,
              name text NOT NULL, before jsonb, after jsonb)
            """,
            "CREATE INDEX chronicle_admin_audit_created_at_idx ON chronicle_admin_audit (created_at DESC)",
            "ALTER TABLE chronicle_custom_providers ADD COLUMN models jsonb",
            "ALTER TABLE chronicle_events ADD COLUMN instance_id text",
            """
            CREATE TABLE chronicle_limit_counters (kind text NOT NULL, subject text NOT NULL, window_start bigint NOT NULL,
              instance_id text NOT NULL, value double precision NOT NULL, updated_at bigint NOT NULL,
              PRIMARY KEY (kind, subject, window_start, instance_id))
            """,
        ],
    ]
}
