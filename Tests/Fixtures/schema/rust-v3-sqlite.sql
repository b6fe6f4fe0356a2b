-- The Rust Chronicle (0.4.3) database at migration version 3, SQLite flavour: the schema its three
-- migrations (init, data tables, steps) leave behind. UUIDs and JSON are text; times are Unix seconds.
-- Used to test that such a database is upgraded in place; never by the server itself.
CREATE TABLE chronicle_meta (key text PRIMARY KEY, value text);
INSERT INTO chronicle_meta (key, value) VALUES ('migration_version', '3');

CREATE TABLE chronicle_pricing_plans (
  id bigint PRIMARY KEY,
  provider bigint,
  start_date bigint,
  end_date bigint,
  per_input_token numeric,
  per_output_token numeric,
  per_request numeric
);

CREATE TABLE chronicle_events (
  id text PRIMARY KEY,
  event_type text,
  organization_id text,
  project_id text,
  user_id text,
  chat_request text,
  chat_response text,
  error text,
  provider text,
  model text,
  application text,
  environment text,
  request_organization_id text,
  request_project_id text,
  request_user_id text,
  workflow_id text,
  workflow_name text,
  run_id text,
  step_id text,
  step_index int,
  prompt_id text,
  prompt_version int,
  meta text,
  response_meta text,
  retries int,
  rate_limited bool,
  request_latency_ms int,
  total_latency_ms int,
  pricing_plan bigint REFERENCES chronicle_pricing_plans (id),
  created_at int NOT NULL
);
CREATE INDEX chronicle_events_workflow_id_idx ON chronicle_events (workflow_id);
CREATE INDEX chronicle_events_run_id_created_at_idx ON chronicle_events (run_id, created_at DESC);

CREATE TABLE chronicle_custom_providers (
  id integer PRIMARY KEY,
  name text NOT NULL,
  label text,
  url text NOT NULL,
  api_key text,
  api_key_source text,
  format text NOT NULL,
  headers text,
  prefix text
);

CREATE TABLE chronicle_aliases (
  id integer PRIMARY KEY,
  name text NOT NULL,
  random_order bool NOT NULL DEFAULT false
);

CREATE TABLE chronicle_alias_providers (
  id integer PRIMARY KEY,
  alias_id bigint REFERENCES chronicle_aliases (id) ON DELETE CASCADE,
  sort int NOT NULL DEFAULT 0,
  model text NOT NULL,
  provider text NOT NULL,
  api_key_name text
);

CREATE TABLE chronicle_api_keys (
  id integer PRIMARY KEY,
  name text,
  source text,
  value text
);

CREATE TABLE chronicle_runs (
  id text PRIMARY KEY,
  name text NOT NULL,
  description text,
  application text,
  environment text,
  input text,
  output text,
  status text NOT NULL,
  trace_id text,
  span_id text,
  tags text,
  info text,
  updated_at bigint NOT NULL,
  created_at bigint NOT NULL
);
CREATE INDEX chronicle_runs_name_created_at_idx ON chronicle_runs (name, created_at DESC);
CREATE INDEX chronicle_runs_name_updated_at_idx ON chronicle_runs (name, updated_at DESC);
CREATE INDEX chronicle_runs_env_app_created_at_idx ON chronicle_runs (environment, application, created_at DESC);
CREATE INDEX chronicle_runs_env_app_updated_at_idx ON chronicle_runs (environment, application, updated_at DESC);
CREATE INDEX chronicle_runs_updated_at_idx ON chronicle_runs (updated_at DESC);
CREATE INDEX chronicle_runs_created_at_idx ON chronicle_runs (created_at DESC);

CREATE TABLE chronicle_steps (
  id text PRIMARY KEY,
  run_id text NOT NULL,
  type text NOT NULL,
  parent_step text,
  name text,
  input text,
  output text,
  status text NOT NULL,
  tags text,
  info text,
  span_id text,
  start_time bigint NOT NULL,
  end_time bigint
);
CREATE INDEX chronicle_steps_run_id_idx ON chronicle_steps (run_id);
