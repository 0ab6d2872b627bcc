-- 0010_slack_reminders: when an approval's Slack message got its reminder (a
-- reply in its thread once the approval is escalated), so it is sent once.
-- The runner wraps this file in one transaction; do not add BEGIN/COMMIT.

-- AlterTable
ALTER TABLE "slack_messages" ADD COLUMN "reminded_at" TIMESTAMPTZ(3);
