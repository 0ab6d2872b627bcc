-- 0008_slack_messages: the Slack message that shows each approval (slack/).
-- A row is claimed before the message is posted (ts NULL until Slack
-- answers), so two API processes never post one approval twice; approvals
-- posted together as one group message share message_key and ts; shown_status
-- is the approval status the message shows, so a decision made anywhere is
-- noticed (and the message updated) after a restart too.
-- The runner wraps this file in one transaction; do not add BEGIN/COMMIT.

-- CreateTable
CREATE TABLE "slack_messages" (
    "approval_id" TEXT NOT NULL,
    "message_key" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "channel" TEXT NOT NULL,
    "ts" TEXT,
    "shown_status" TEXT NOT NULL DEFAULT 'pending',
    "claimed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "posted_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3),

    CONSTRAINT "slack_messages_pkey" PRIMARY KEY ("approval_id")
);

-- CreateIndex
CREATE INDEX "slack_messages_message_key_idx" ON "slack_messages"("message_key");

-- CreateIndex
CREATE INDEX "slack_messages_shown_status_idx" ON "slack_messages"("shown_status");

-- AddForeignKey
ALTER TABLE "slack_messages" ADD CONSTRAINT "slack_messages_approval_id_fkey" FOREIGN KEY ("approval_id") REFERENCES "approvals"("id") ON DELETE CASCADE ON UPDATE CASCADE;
