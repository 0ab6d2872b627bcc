-- 0001_init: Keel's initial schema, written to match what `prisma migrate`
-- would generate for prisma/schema.prisma (same types, defaults and object
-- names), so the Prisma client and test/db/schema.test.ts agree with it.
-- One deliberate difference: list columns (String[]) are NOT NULL here, where
-- prisma migrate would leave them nullable; the Prisma type is a non-null
-- array, so a NULL written by raw SQL would break the client's contract.
-- The runner wraps this file in one transaction; do not add BEGIN/COMMIT.

-- CreateTable
CREATE TABLE "goals" (
    "id" TEXT NOT NULL,
    "request_id" TEXT,
    "workflow_id" TEXT NOT NULL,
    "title" TEXT NOT NULL,
    "description" TEXT,
    "kind" TEXT NOT NULL,
    "input" JSONB NOT NULL DEFAULT '{}',
    "budget_usd" DOUBLE PRECISION,
    "status" TEXT NOT NULL,
    "plan_version" INTEGER NOT NULL DEFAULT 0,
    "plan_churn" INTEGER NOT NULL DEFAULT 0,
    "cost_usd" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "input_tokens" INTEGER NOT NULL DEFAULT 0,
    "output_tokens" INTEGER NOT NULL DEFAULT 0,
    "outcome" JSONB,
    "error" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "goals_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "steps" (
    "id" TEXT NOT NULL,
    "goal_id" TEXT NOT NULL,
    "plan_version" INTEGER NOT NULL,
    "step_id" TEXT NOT NULL,
    "tool" TEXT NOT NULL,
    "title" TEXT NOT NULL,
    "rationale" TEXT NOT NULL DEFAULT '',
    "inputs" JSONB NOT NULL DEFAULT '{}',
    "depends_on" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    "requires_approval" BOOLEAN NOT NULL DEFAULT false,
    "status" TEXT NOT NULL,
    "output" JSONB,
    "model" TEXT,
    "prompt_hash" TEXT,
    "memory_ids" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    "cost_usd" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "error" TEXT,
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "steps_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "approvals" (
    "id" TEXT NOT NULL,
    "goal_id" TEXT NOT NULL,
    "step_id" TEXT NOT NULL,
    "title" TEXT NOT NULL,
    "summary" TEXT NOT NULL DEFAULT '',
    "rationale" TEXT NOT NULL DEFAULT '',
    "proposed" JSONB NOT NULL DEFAULT '{}',
    "status" TEXT NOT NULL,
    "decision" TEXT,
    "edits" JSONB,
    "comment" TEXT,
    "actor" TEXT,
    "escalated" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "decided_at" TIMESTAMPTZ(3),

    CONSTRAINT "approvals_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "side_effects" (
    "id" TEXT NOT NULL,
    "idempotency_key" TEXT NOT NULL,
    "goal_id" TEXT,
    "step_id" TEXT,
    "kind" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "request" JSONB NOT NULL DEFAULT '{}',
    "result" JSONB,
    "error" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "committed_at" TIMESTAMPTZ(3),
    "compensated_at" TIMESTAMPTZ(3),

    CONSTRAINT "side_effects_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "artifacts" (
    "id" TEXT NOT NULL,
    "goal_id" TEXT,
    "step_id" TEXT,
    "kind" TEXT NOT NULL,
    "title" TEXT NOT NULL DEFAULT '',
    "content" TEXT NOT NULL,
    "content_type" TEXT NOT NULL DEFAULT 'text/plain',
    "version" INTEGER NOT NULL DEFAULT 1,
    "previous_id" TEXT,
    "human_edited" BOOLEAN NOT NULL DEFAULT false,
    "status" TEXT NOT NULL DEFAULT 'active',
    "metadata" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "artifacts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "events" (
    "seq" BIGSERIAL NOT NULL,
    "goal_id" TEXT,
    "type" TEXT NOT NULL,
    "actor" TEXT NOT NULL,
    "data" JSONB NOT NULL DEFAULT '{}',
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "events_pkey" PRIMARY KEY ("seq")
);

-- CreateTable
CREATE TABLE "inbound_events" (
    "id" TEXT NOT NULL,
    "source" TEXT NOT NULL,
    "external_id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "payload" JSONB NOT NULL DEFAULT '{}',
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "inbound_events_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "goals_request_id_key" ON "goals"("request_id");

-- CreateIndex
CREATE UNIQUE INDEX "goals_workflow_id_key" ON "goals"("workflow_id");

-- CreateIndex
CREATE INDEX "goals_status_created_at_idx" ON "goals"("status", "created_at");

-- CreateIndex
CREATE UNIQUE INDEX "steps_goal_id_plan_version_step_id_key" ON "steps"("goal_id", "plan_version", "step_id");

-- CreateIndex
CREATE INDEX "approvals_status_created_at_idx" ON "approvals"("status", "created_at");

-- CreateIndex
CREATE INDEX "approvals_goal_id_idx" ON "approvals"("goal_id");

-- CreateIndex
CREATE UNIQUE INDEX "side_effects_idempotency_key_key" ON "side_effects"("idempotency_key");

-- CreateIndex
CREATE INDEX "side_effects_goal_id_idx" ON "side_effects"("goal_id");

-- CreateIndex
CREATE INDEX "artifacts_goal_id_idx" ON "artifacts"("goal_id");

-- CreateIndex
CREATE INDEX "events_goal_id_seq_idx" ON "events"("goal_id", "seq");

-- CreateIndex
CREATE INDEX "events_type_idx" ON "events"("type");

-- CreateIndex
CREATE UNIQUE INDEX "inbound_events_source_external_id_key" ON "inbound_events"("source", "external_id");

-- AddForeignKey
ALTER TABLE "steps" ADD CONSTRAINT "steps_goal_id_fkey" FOREIGN KEY ("goal_id") REFERENCES "goals"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "approvals" ADD CONSTRAINT "approvals_goal_id_fkey" FOREIGN KEY ("goal_id") REFERENCES "goals"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Append-only event log. Prisma has no way to express this, so it lives only
-- here: the log is the audit trail of what Keel did, and a bug (or a person
-- at a psql prompt) must not be able to rewrite or erase it. Row triggers
-- cover UPDATE/DELETE; TRUNCATE bypasses row triggers, so it needs its own
-- statement-level trigger. The SQLSTATE is the plain raise_exception
-- (P0001) on purpose: Prisma's pg adapter translates restrict_violation
-- (23001) into "Foreign key constraint violated" and drops this message.
CREATE FUNCTION "keel_events_append_only"() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'events is append-only: % is not allowed on table events', TG_OP
        USING ERRCODE = 'raise_exception',
              HINT = 'Record a new event instead of changing or removing an existing one.';
END;
$$;

CREATE TRIGGER "events_append_only_row"
    BEFORE UPDATE OR DELETE ON "events"
    FOR EACH ROW EXECUTE FUNCTION "keel_events_append_only"();

CREATE TRIGGER "events_append_only_truncate"
    BEFORE TRUNCATE ON "events"
    FOR EACH STATEMENT EXECUTE FUNCTION "keel_events_append_only"();
