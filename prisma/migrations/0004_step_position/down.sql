-- Reverts 0004_step_position.
ALTER TABLE "steps" DROP COLUMN "position";
