-- Reverts 0002_memory: children before parents, the trigger with its table,
-- then the trigger function.

DROP TABLE "memory_items";
DROP FUNCTION "keel_memory_items_bump_rev"();
DROP TABLE "embedding_cache";
DROP TABLE "contacts";
DROP TABLE "organizations";
DROP TABLE "projects";

DROP INDEX "artifacts_lineage_id_version_idx";
ALTER TABLE "artifacts" DROP COLUMN "lineage_id",
DROP COLUMN "subject";
