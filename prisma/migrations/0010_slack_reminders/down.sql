-- Reverts 0010_slack_reminders.
ALTER TABLE "slack_messages" DROP COLUMN "reminded_at";
