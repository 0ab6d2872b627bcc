-- 0004_step_position: a step's place in its plan. Steps of one plan are now
-- written in one statement and share a created_at, so order needs its own column.
ALTER TABLE "steps" ADD COLUMN "position" INTEGER NOT NULL DEFAULT 0;
