-- Reverts 0006_triggers.
ALTER TABLE "inbound_events" DROP COLUMN "matched_triggers",
DROP COLUMN "classification";
DROP TABLE "triggers";
