-- 0006_triggers: operators' triggers (triggers/), rules that turn matching
-- adapter events into goals; and, on each inbound event, Keel's
-- classification of it and the triggers it matched, written once when the
-- event is first routed (commands/events.ts). A replayed event is answered
-- from these, so it never starts a second goal.
-- The runner wraps this file in one transaction; do not add BEGIN/COMMIT.

-- CreateTable
CREATE TABLE "triggers" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "event_type" TEXT NOT NULL,
    "source" TEXT,
    "match" JSONB NOT NULL DEFAULT '{}',
    "goal" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "triggers_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "triggers_name_key" ON "triggers"("name");

-- CreateIndex
CREATE INDEX "triggers_event_type_idx" ON "triggers"("event_type");

-- AlterTable
ALTER TABLE "inbound_events" ADD COLUMN "classification" JSONB,
ADD COLUMN "matched_triggers" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[];
