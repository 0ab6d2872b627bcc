-- Reverts 0001_init. Children before parents so the foreign keys never block
-- a drop; dropping "events" takes its triggers with it, and the trigger
-- function goes last because the triggers depend on it. No IF EXISTS: if
-- something is already missing the database has drifted, and failing (the
-- runner rolls the transaction back) is better than pretending it worked.

DROP TABLE "steps";
DROP TABLE "approvals";
DROP TABLE "goals";
DROP TABLE "side_effects";
DROP TABLE "artifacts";
DROP TABLE "events";
DROP TABLE "inbound_events";

DROP FUNCTION "keel_events_append_only"();
