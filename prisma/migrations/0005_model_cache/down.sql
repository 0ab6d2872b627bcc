-- Reverts 0005_model_cache.
DROP FUNCTION "keel_model_cache_version"(TEXT, TEXT);
DROP TABLE "model_cache_stats";
DROP TABLE "model_cache";
